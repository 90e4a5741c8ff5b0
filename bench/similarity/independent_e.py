"""Written independently (E): one of six solutions used to set and check the similarity threshold."""
# %% mode_answer
MODE = "many-to-one"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, x):
        out, _ = self.lstm(x)          # (B, T, H): hidden state after every hour
        summary = out[:, -1, :]        # (B, H): state after the last hour has been read
        return self.head(self.norm(summary))  # (B, 1)
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    # Huber-style loss: quadratic for errors below 0.1 std, linear (like MAE) above.
    return nn.SmoothL1Loss(beta=0.1)
# %% training_loop
def _weighted(loss, batch):
    """Pair a batch-mean loss with its batch size, so that sums give a per-sample mean."""
    return loss.item() * len(batch), len(batch)


def _mean_per_sample(pairs):
    """Mean loss per sample from (summed loss, batch size) pairs."""
    totals, sizes = zip(*pairs)
    return float(sum(totals) / sum(sizes))


def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()

    def update(inputs, targets):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return _weighted(loss, inputs)

    batches = tqdm(loader, desc="train", leave=False)
    return _mean_per_sample(update(inputs, targets) for inputs, targets in batches)


def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    with torch.no_grad():
        return _mean_per_sample(
            _weighted(loss_fn(model(inputs), targets), inputs) for inputs, targets in loader)


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_loss = math.inf
    best_state = None
    bad_epochs = 0

    progress = tqdm(range(epochs), desc="epochs")
    for _ in progress:
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer)
        val_loss = evaluate(model, val_loader, loss_fn)
        if scheduler is not None:
            scheduler.step()
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        progress.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")

        if val_loss < best_loss:
            best_loss = val_loss
            best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            bad_epochs = 0
        else:
            bad_epochs += 1
            if patience is not None and bad_epochs >= patience:
                break

    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
# %% final_model
torch.manual_seed(SEED)
final_epochs = 15
final_model = WeatherLSTM(n_features, hidden_size=64)
final_optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
final_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(final_optimizer, T_max=final_epochs)
final_history = fit(
    final_model, train_loader, val_loader, choose_loss(), final_optimizer,
    epochs=final_epochs, scheduler=final_scheduler, patience=4,
)
bar = VALIDATION_BAR * mae_degc(data, "val", persistence(data, "val"))
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC (the bar: {bar:.3f} degC)")
# %% answer_cross_entropy
Cross-entropy compares a predicted probability distribution over a fixed set of classes with the true class, so it needs discrete labels and a softmax output. Our target is a temperature, a continuous real number, and the model outputs one unbounded value, so there are no classes to assign probability to. We could bin the temperature into classes, but then the loss would treat being off by one bin the same as being off by twenty, ignoring how far the forecast is from the truth. I picked a regression loss instead, SmoothL1 (Huber) with a small beta: it behaves like MAE for errors above 0.1 standard deviation, which matches the MAE in degC we are judged on and keeps rare large errors (fronts, sudden weather changes) from dominating the gradient as they would with MSE. Near zero it is quadratic, so unlike plain L1 its gradient shrinks smoothly as the forecast gets close, which makes the last part of training steadier.
# %% answer_vanishing
In a plain RNN the state is squashed through a nonlinearity and multiplied by the same recurrent matrix at each step, so the gradient over many steps is a product of many Jacobians that usually shrinks (or blows up) exponentially. The LSTM cell update c(t) = f(t) * c(t-1) + i(t) * g(t) is additive: the new memory is the old memory scaled elementwise by the forget gate plus a new term, with no weight matrix and no squashing on that path. So the direct derivative dc(t)/dc(t-1) is just f(t), and the gradient flowing back along the cell state is multiplied by the forget-gate values, not by W and tanh' each step. When the network learns to keep f(t) close to 1 for useful information, this path lets gradients pass through many steps almost unchanged (the "constant error carousel"). The gates are learned, so the network decides for itself what to remember for a long time and what to forget, rather than having a fixed decay.
# %% answer_gates
The gates act as soft switches: they multiply another quantity elementwise to decide how much of it passes, so they need values between 0 (block completely) and 1 (let everything through), and that is exactly the range of the sigmoid. A negative gate value would make no sense as a "fraction to keep", and values above 1 would let the cell state grow without limit. The candidate g(t), in contrast, is the content written into memory, and it must be able to raise or lower the cell state; tanh gives values in (-1, 1) centred at zero, so updates can go either way and stay bounded. tanh also has a steeper gradient around zero than the sigmoid, which helps the content path learn. The same reasoning explains the tanh in h(t) = o(t) * tanh(c(t)): it keeps the exposed state bounded and signed, while o(t) chooses how much of it to show.
# %% answer_hyperparameters
(Written without running the sweep on this machine, so this is my reasoning and not measured results; check it against the sweep table before submitting.) I expect Adam to beat SGD with momentum in these short runs: Adam scales each weight's step separately and usually gets an LSTM going quickly, while SGD needs a carefully tuned learning rate and more epochs. For Adam, lr = 3e-3 should converge faster than 1e-3, and a cosine schedule should help further, because the learning rate falls towards the end and the weights settle instead of jittering around a minimum. Hidden size 16 will probably look worse than 64 after 2 short epochs, but the notebook warns that this mostly measures speed, so I keep 64: it is still cheap on one CPU thread and has room for the daily cycle and weather patterns. For the final model I chose Adam with lr 3e-3, hidden size 64, one layer, CosineAnnealingLR over 15 epochs on the full training set, and early stopping with patience 4, which keeps the weights of the best validation epoch; this should train in a few minutes and leave some margin below the validation bar.
