"""Written independently (B): one of six solutions used to set and check the similarity threshold."""
# %% mode_answer
MODE = "many-to-one"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers)  # time-major: (T, B, F)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        _, (h_n, _) = self.lstm(x.transpose(0, 1))
        return self.head(h_n[-1])
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    return nn.MSELoss()
# %% training_loop
import copy


def _run(model, loader, loss_fn, optimizer=None):
    total, count = 0.0, 0
    for x, y in loader:
        loss = loss_fn(model(x), y)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += loss.item() * len(x)
        count += len(x)
    return float(total / count)


def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    return _run(model, loader, loss_fn, optimizer)


def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    with torch.no_grad():
        return _run(model, loader, loss_fn)


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_loss, best_state, waited, epoch = math.inf, None, 0, 0
    bar = tqdm(total=epochs, desc="epochs")
    while epoch < epochs and (patience is None or waited < patience):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        history["val_loss"].append(evaluate(model, val_loader, loss_fn))
        if scheduler is not None:
            scheduler.step()
        if history["val_loss"][-1] < best_loss:
            best_loss, best_state, waited = history["val_loss"][-1], copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
        epoch += 1
        bar.update(1)
        bar.set_postfix(train=f"{history['train_loss'][-1]:.4f}", val=f"{history['val_loss'][-1]:.4f}")
    bar.close()
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
# %% final_model
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.SGD(final_model.parameters(), lr=0.03, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=8, gamma=0.5)
final_history = fit(final_model, train_loader, val_loader, choose_loss(), optimizer,
                    epochs=40, scheduler=scheduler, patience=6)
bar = VALIDATION_BAR * mae_degc(data, "val", persistence(data, "val"))
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC (the bar: {bar:.3f} degC)")
# %% answer_cross_entropy
Cross-entropy compares a predicted probability distribution over a fixed set of classes with the true class, so it only makes sense for classification. Our target is a temperature, a continuous real number with no classes, and the network outputs a single unbounded value rather than class probabilities; we could only use cross-entropy by binning temperatures into classes, which throws away the fact that being off by 0.5 degC is much better than being off by 5 degC. A regression loss measures the distance between forecast and truth directly. I chose the mean squared error (nn.MSELoss): it is zero for a perfect forecast, grows smoothly with the error, has a well-behaved gradient everywhere, and penalises large misses more strongly than small ones, which is what we want from a weather forecast. The data have few extreme outliers after normalisation, so the sensitivity of MSE to outliers (where MAE would be more robust) is not a problem here.
# %% answer_vanishing
In a plain RNN the state is recomputed at every step through a squashing nonlinearity and a multiplication by the recurrent matrix U, so the factor dh(t)/dh(t-1) is a product of U and tanh derivatives, and many of these in a row shrink (or blow up) exponentially. In the LSTM the cell state is updated additively, c(t) = f(t) * c(t-1) + i(t) * g(t), so along the cell-state path dc(t)/dc(t-1) is essentially just the forget gate f(t), an elementwise factor with no weight matrix and no squashing applied to c(t-1). When the network learns to keep f(t) close to 1, the gradient passes through many steps almost unchanged (the "constant error carousel"), so information and error signals can travel across long time spans. The gates themselves are learned, so the network decides when to keep and when to forget instead of being forced to decay at a fixed rate.
# %% answer_gates
The gates act as soft switches that scale how much of something passes through: sigmoid outputs values in (0, 1), where 0 means "block completely" and 1 means "let everything through", which is exactly the meaning of a multiplicative gate. A tanh gate could be negative and flip the sign of the memory, which makes no sense for "how much to keep". The candidate values g(t), on the other hand, are the content written into the cell state, and they must be able to both increase and decrease it, so a zero-centred range (-1, 1) is appropriate. The tanh also keeps the candidates bounded and centred around zero, which keeps the cell state from drifting in one direction and gives stronger gradients around zero than a sigmoid.
# %% answer_hyperparameters
The short sweep showed that Adam converges fastest in two short epochs, a larger learning rate (3e-3) helped over 1e-3, and a cosine schedule gave a small extra gain; plain SGD with momentum and the small hidden size 16 looked worse in the sweep, but mostly because they converge more slowly, not because they end up worse. For my final model I chose SGD with momentum 0.9, a learning rate of 0.03 and a StepLR schedule that halves the learning rate every 8 epochs, with hidden size 64 and one LSTM layer. With the full training set and up to 40 epochs there is enough time for SGD to catch up, the relatively large initial learning rate makes fast progress early on, and the step decay lets it settle into a good minimum at the end. Hidden size 64 is large enough to model the daily cycle and the weather changes while staying fast on one CPU thread. Early stopping with patience 6 on the validation loss keeps the best epoch's weights and guards against overfitting and against wasting the time budget.
