"""Written independently (F): one of six solutions used to set and check the similarity threshold."""
# %% mode_answer
MODE = "many-to-one"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features: int, hidden_size: int = 64, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
        )
        self.activation = nn.ReLU()
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # h_n: (num_layers, B, H); the top layer's state after the final time step summarises the window.
        _, (h_n, _) = self.lstm(x)
        last_state = h_n[-1]  # (B, H)
        return self.readout(self.activation(last_state))  # (B, 1)
# %% loss_selection
def choose_loss() -> nn.Module:
    """Return the torch.nn loss module instance used to train the forecaster."""
    return nn.MSELoss()
# %% training_loop
from typing import Dict, List, Optional


def train_one_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> float:
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    loss_sum = 0.0
    n_seen = 0
    for inputs, targets in loader:
        optimizer.zero_grad()
        predictions = model(inputs)
        batch_loss = loss_fn(predictions, targets)
        batch_loss.backward()
        optimizer.step()
        batch_size = inputs.shape[0]
        loss_sum += batch_loss.item() * batch_size
        n_seen += batch_size
    return float(loss_sum / max(n_seen, 1))


def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader, loss_fn: nn.Module) -> float:
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    loss_sum = 0.0
    n_seen = 0
    with torch.no_grad():
        for inputs, targets in loader:
            batch_size = inputs.shape[0]
            loss_sum += loss_fn(model(inputs), targets).item() * batch_size
            n_seen += batch_size
    return float(loss_sum / max(n_seen, 1))


def fit(
    model: nn.Module,
    train_loader: torch.utils.data.DataLoader,
    val_loader: torch.utils.data.DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler=None,
    patience: Optional[int] = None,
) -> Dict[str, List[float]]:
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history: Dict[str, List[float]] = {"train_loss": [], "val_loss": []}
    best_val = math.inf
    best_weights: Optional[Dict[str, torch.Tensor]] = None
    stale_epochs = 0

    progress = tqdm(range(epochs), desc="epochs", leave=False)
    for _ in progress:
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer)
        val_loss = evaluate(model, val_loader, loss_fn)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        progress.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")

        if scheduler is not None:
            scheduler.step()

        if val_loss < best_val:
            best_val = val_loss
            best_weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            stale_epochs = 0
        else:
            stale_epochs += 1

        if patience is not None and stale_epochs >= patience:
            break

    if patience is not None and best_weights is not None:
        model.load_state_dict(best_weights)
    return history
# %% final_model
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64, num_layers=1)
final_optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
final_scheduler = torch.optim.lr_scheduler.ExponentialLR(final_optimizer, gamma=0.85)
final_history = fit(
    final_model,
    train_loader,
    val_loader,
    choose_loss(),
    final_optimizer,
    epochs=16,
    scheduler=final_scheduler,
    patience=4,
)
bar = VALIDATION_BAR * mae_degc(data, "val", persistence(data, "val"))
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC (the bar: {bar:.3f} degC)")
# %% answer_cross_entropy
Cross-entropy compares a predicted probability distribution over a fixed set of classes with the true class, so it only makes sense when the target is a category. Our target is a temperature, a continuous real number, and the model outputs a single unbounded value rather than class probabilities; there is no set of classes to spread probability over (short of binning the temperature, which throws away the ordering and the size of the error). What we need is a loss that is zero for a perfect forecast and grows with the distance between forecast and measurement, i.e. a regression loss. I chose the mean squared error: it is smooth and differentiable everywhere, gives larger gradients for larger errors so training converges well, and punishes big misses more than small ones, which is what we want from a forecast. MAE would also be reasonable (and is what we report in degC), but its constant-size gradient makes the final stages of optimisation a bit less stable.
# %% answer_vanishing
In a plain RNN the gradient flowing back from step t to step k passes through the product of Jacobians dh(t)/dh(t-1), each of which contains the recurrent weight matrix and the derivative of the squashing nonlinearity, so it tends to shrink (or blow up) exponentially with t - k. In the LSTM the cell state is updated additively: c(t) = f(t) * c(t-1) + i(t) * g(t). Along this path the derivative dc(t)/dc(t-1) is (apart from indirect terms through the gates) simply the forget gate f(t), an element-wise factor with no weight matrix and no tanh derivative in between. When the network learns to keep f(t) close to 1, the gradient travels back through many steps almost unchanged (the "constant error carousel"), so information and error signals from early inputs are not wiped out. The network can also learn when to forget (f near 0), so the decay is controlled by the data rather than imposed by the architecture.
# %% answer_gates
A gate decides how much of something passes through, so it should act like a soft switch with values between 0 (block everything) and 1 (let everything through); the sigmoid maps any pre-activation to exactly that range (0, 1) and is differentiable, so the gates can be learned by backpropagation. The candidate values g(t), on the other hand, are the content that gets written into the cell state, and that content must be able to increase or decrease the memory: tanh gives values in (-1, 1), centred on zero, so a candidate can push the cell state up or down. Keeping the candidates bounded also prevents the cell state from growing without limit at every step, and tanh's zero-centred output and steeper gradient around 0 make learning better behaved. The same reasoning explains h(t) = o(t) * tanh(c(t)): tanh squashes the memory into a signed, bounded value, and the sigmoid output gate scales how much of it is exposed.
# %% answer_hyperparameters
The short sweep mainly tells how fast a setting converges: Adam gets to a useful forecast in very few epochs with little tuning, whereas SGD with momentum is much more sensitive to the learning rate and needs more epochs. A larger learning rate (3e-3 instead of 1e-3) speeds up the early epochs, and decaying the learning rate afterwards lets the model settle into a better minimum instead of bouncing around it; a small hidden size looks worse in two short epochs mostly because it learns more slowly, not necessarily because it ends up worse. For the final model I chose a single-layer LSTM with hidden size 64 (enough capacity for 12 hours of about 10-19 features, and still fast on one CPU thread), Adam with lr = 3e-3, and an ExponentialLR schedule with gamma = 0.85 stepped once per epoch, so the learning rate starts high for fast progress and is about 10x smaller after 15 epochs for fine-tuning. I train for at most 16 epochs on the full training period with early stopping (patience 4) on the validation loss, which restores the weights of the best epoch, guards against overfitting and keeps the training time within the limit.
