"""Written independently (C): one of six solutions used to set and check the similarity threshold."""
# %% mode_answer
MODE = "many-to-one"  # 12 hourly rows in, a single temperature out
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        """Stacked LSTM encoder (dropout between layers when stacked) plus a small MLP head."""
        super().__init__()
        between_layers = 0.1 if num_layers > 1 else 0.0  # nn.LSTM only applies dropout between layers
        self.lstm = nn.LSTM(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=between_layers,
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def _last_state(self, x):
        """Run the LSTM over the window and return the top layer's output after the final step, (B, H)."""
        sequence_out, _ = self.lstm(x)  # (B, T, H)
        return sequence_out[:, -1, :]

    def forward(self, x):
        """Forecast from the summary of the whole window: (B, T, F) -> (B, 1)."""
        return self.head(self._last_state(x))
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster.

    Huber loss: quadratic for small errors (like MSE, smooth near zero), linear for
    large ones (like MAE), so a few odd hours do not dominate the gradient.
    """
    return nn.HuberLoss(delta=1.0)
# %% training_loop
GRAD_CLIP_NORM = 10.0  # safety rail against the occasional exploding gradient in BPTT


def _batch_loss(model, x, y, loss_fn):
    """Forward one batch and return its (mean) loss tensor."""
    return loss_fn(model(x), y)


def _weighted_mean(total, count):
    """Mean per sample as a plain Python float (0.0 for an empty loader)."""
    return float(total / count) if count else 0.0


def _snapshot(model):
    """Detached copy of the model's parameters and buffers."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    running, seen = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = _batch_loss(model, x, y, loss_fn)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=GRAD_CLIP_NORM)
        optimizer.step()
        running += loss.item() * len(x)
        seen += len(x)
    return _weighted_mean(running, seen)


def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    running, seen = 0.0, 0
    with torch.inference_mode():
        for x, y in loader:
            running += _batch_loss(model, x, y, loss_fn).item() * len(x)
            seen += len(x)
    return _weighted_mean(running, seen)


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}.

    The scheduler (if any) is stepped once per epoch. With `patience`, training stops after
    `patience` epochs without a new best validation loss, and the best epoch's weights are
    loaded back into the model before returning.
    """
    history = {"train_loss": [], "val_loss": []}
    best_val, best_state, stale = math.inf, None, 0
    progress = tqdm(range(epochs), desc="epochs", leave=False)
    for _ in progress:
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        val_loss = evaluate(model, val_loader, loss_fn)
        history["val_loss"].append(val_loss)
        if scheduler is not None:
            scheduler.step()
        progress.set_postfix(train=f"{history['train_loss'][-1]:.4f}", val=f"{val_loss:.4f}")

        if val_loss < best_val:
            best_val, best_state, stale = val_loss, _snapshot(model), 0
        else:
            stale += 1
        if patience is not None and stale >= patience:
            break
    progress.close()

    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
# %% final_model
def build_final_setup(epochs, hidden_size=64, num_layers=2, lr=3e-3, weight_decay=1e-4):
    """Model, AdamW optimizer and a per-epoch cosine schedule for the final training run."""
    model = WeatherLSTM(n_features, hidden_size=hidden_size, num_layers=num_layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-5)
    return model, optimizer, scheduler


FINAL_EPOCHS = 10
torch.manual_seed(SEED)
final_model, final_optimizer, final_scheduler = build_final_setup(FINAL_EPOCHS)
start = time.perf_counter()
final_history = fit(final_model, train_loader, val_loader, choose_loss(), final_optimizer,
                    epochs=FINAL_EPOCHS, scheduler=final_scheduler, patience=3)
print(f"{len(final_history['val_loss'])} epochs in {time.perf_counter() - start:.1f} s")
bar = VALIDATION_BAR * mae_degc(data, "val", persistence(data, "val"))
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC (the bar: {bar:.3f} degC)")
# %% answer_cross_entropy
Cross-entropy compares a predicted probability distribution over a fixed set of classes with the true class, so it only makes sense when the target is a category. Our target is a temperature, a continuous real number, and the network outputs one unbounded value, not class probabilities; there is no class to score, and binning temperatures into classes would throw away the information that 10.1 °C is much closer to 10 °C than 25 °C is. What we need is a loss that grows with the distance between forecast and measurement, i.e. a regression loss. I used the Huber loss: for small errors it behaves like MSE (smooth, gradients shrink as we approach the target), and for large errors it grows only linearly like MAE, so a few unusual hours (fronts, sensor glitches) cannot dominate the gradient. Since we report MAE in the end, a loss that is MAE-like for big errors also fits the evaluation metric.
# %% answer_vanishing
In a plain RNN the state is pushed through a weight matrix and a squashing nonlinearity at every step, so the gradient from step t back to step k is a product of t - k Jacobians that typically shrink it each time. In the LSTM the cell state is updated additively: c(t) = f(t) * c(t-1) + i(t) * g(t). The direct derivative dc(t)/dc(t-1) is just the forget gate f(t), an element-wise factor, with no weight matrix and no tanh derivative in between. When the network learns to keep f(t) close to 1, the gradient flows back along the cell state almost unchanged (the "constant error carousel"), so information and error signals from many steps earlier survive. The gates are learned, so the network itself decides when to keep and when to forget, rather than losing the signal by construction.
# %% answer_gates
A gate acts as a soft switch that multiplies another quantity element-wise, so it needs values between 0 ("block/forget everything") and 1 ("let everything through/keep everything"); the sigmoid maps any input to exactly that range and is differentiable, so the amount of keeping or writing can be learned. The candidate values g(t) are the actual content written into the cell state, and that content must be able to increase or decrease the memory, so it needs both signs; tanh gives values in (-1, 1), centred on zero. Bounding the candidate also keeps the cell state from growing without limit step after step, and the same reasoning applies to tanh(c(t)) in the output. A sigmoid candidate could only ever add positive amounts, and a tanh gate could flip signs instead of scaling, which is not what a gate should do.
# %% answer_hyperparameters
The sweep only runs 2 short epochs on a fifth of the data, so I read it as a measure of how fast a setting learns and not of how good it finally gets. Adam-type optimizers learn much faster than SGD with momentum at these learning rates, and a larger learning rate (3e-3) gets further in a few epochs than 1e-3; adding the cosine schedule lets the last epochs take smaller steps so the validation loss settles instead of jumping around. A small hidden size starts slower, but that says little about a full-length run, so I kept H = 64 and added a second LSTM layer with a little dropout between the layers for more capacity without much overfitting. For the final model I chose AdamW (Adam with decoupled weight decay) at lr = 3e-3, cosine annealing stepped once per epoch over 10 epochs, gradient clipping as a safeguard and early stopping with patience 3, which restores the best epoch. The Huber loss keeps training close to MSE while being less sensitive to unusual hours, and 10 epochs of this model stay well inside the time limit of the cell.
