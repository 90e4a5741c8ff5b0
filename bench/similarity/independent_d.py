"""Written independently (D): one of six solutions used to set and check the similarity threshold."""
# %% mode_answer
# 12 hourly inputs go in, a single temperature comes out at the end
MODE = "many-to-one"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        # remember the sizes, I need them to build the zero states in forward
        self.n_features = n_features
        self.hidden_size = hidden_size
        self.num_layers = num_layers

        # the recurrent part, batch_first so the input is (B, T, F)
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)

        # the small head that turns the last hidden state into one number
        self.head = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, x):
        # x has shape (B, T, F)
        batch_size = x.shape[0]

        # start every sequence from an empty memory: shape (num_layers, B, H)
        h0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=x.dtype, device=x.device)
        c0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=x.dtype, device=x.device)

        # run the LSTM over all time steps
        out, (hn, cn) = self.lstm(x, (h0, c0))  # out: (B, T, H)

        # the last time step has seen all 12 hours
        last_step = out[:, -1, :]  # (B, H)

        # map it to the forecast
        prediction = self.head(last_step)  # (B, 1)
        return prediction
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    # mean absolute error, the same measure the forecast is judged with
    loss_fn = nn.L1Loss()
    return loss_fn
# %% training_loop
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total_loss = 0.0
    n_samples = 0
    for x, y in loader:
        # 1. clear old gradients
        optimizer.zero_grad()
        # 2. forward pass
        y_pred = model(x)
        # 3. loss of this batch (mean over the batch)
        loss = loss_fn(y_pred, y)
        # 4. backward pass
        loss.backward()
        # 5. update the weights
        optimizer.step()
        # 6. add up the loss, weighted by the batch size
        batch_size = x.shape[0]
        total_loss = total_loss + loss.item() * batch_size
        n_samples = n_samples + batch_size
    mean_loss = total_loss / n_samples
    return float(mean_loss)


def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    total_loss = 0.0
    n_samples = 0
    with torch.no_grad():
        for x, y in loader:
            y_pred = model(x)
            loss = loss_fn(y_pred, y)
            batch_size = x.shape[0]
            total_loss = total_loss + loss.item() * batch_size
            n_samples = n_samples + batch_size
    mean_loss = total_loss / n_samples
    return float(mean_loss)


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}

    best_val = float("inf")
    best_state = None
    best_epoch = 0
    epochs_without_improvement = 0

    for epoch in range(1, epochs + 1):
        # train and measure
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer)
        val_loss = evaluate(model, val_loader, loss_fn)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)

        # one scheduler step per epoch
        if scheduler is not None:
            scheduler.step()

        # is this the best epoch so far?
        if val_loss < best_val:
            best_val = val_loss
            best_epoch = epoch
            best_state = {}
            for name, tensor in model.state_dict().items():
                best_state[name] = tensor.detach().clone()
            epochs_without_improvement = 0
            marker = " (best so far)"
        else:
            epochs_without_improvement = epochs_without_improvement + 1
            marker = ""

        print(f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, val loss {val_loss:.4f}{marker}")

        # early stopping
        if patience is not None and epochs_without_improvement >= patience:
            print(f"no improvement for {patience} epochs, stopping early")
            break

    # go back to the weights of the best epoch
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
        print(f"restored the weights of epoch {best_epoch} (val loss {best_val:.4f})")

    return history
# %% final_model
torch.manual_seed(SEED)

final_epochs = 15
final_model = WeatherLSTM(n_features, hidden_size=64)
final_optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
final_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(final_optimizer, T_max=final_epochs)

final_history = fit(
    final_model,
    train_loader,
    val_loader,
    choose_loss(),
    final_optimizer,
    epochs=final_epochs,
    scheduler=final_scheduler,
    patience=4,
)
# %% answer_cross_entropy
Cross-entropy compares a predicted probability distribution over a fixed set of classes with the true class, but our target is a temperature, a continuous real number, not a class. To use it we would have to cut the temperature range into bins, which throws away precision and also the order of the values: predicting 10 degC when the truth is 11 degC would count as just as wrong as predicting -20 degC. A regression loss measures how far the forecast is from the measured value, so bigger mistakes cost more. I chose the L1 loss (mean absolute error) because it is exactly the measure the forecast is judged with (MAE in degC), it is in the same units as the target, and it is less dominated by a few large errors than MSE.
# %% answer_vanishing
In a plain RNN the gradient flowing back in time is multiplied at every step by the Jacobian dh(t)/dh(t-1), which contains the recurrent weights and the derivative of the squashing function, so over many steps the product usually shrinks towards zero. In the LSTM the cell state is updated additively: c(t) = f(t) * c(t-1) + i(t) * g(t). The direct derivative dc(t)/dc(t-1) along this path is just the forget gate f(t), with no weight matrix and no tanh derivative in between. When the network learns to keep f(t) close to 1, the gradient can travel back along the cell state over many steps almost unchanged (the "constant error carousel"). The gates are learned, so the network itself decides what information, and therefore which gradients, should survive for a long time.
# %% answer_gates
The gates act like soft switches: they multiply another quantity element by element and decide what fraction of it passes. A sigmoid outputs values between 0 (block completely) and 1 (let everything through), which is exactly the range a fraction needs, and it is smooth, so it can be trained by gradient descent. The candidate values g(t) are the actual content written into the cell state, and that content must be able to increase or decrease the memory. tanh gives values between -1 and 1, centred at zero, so a candidate can push the cell state in both directions while staying bounded, which keeps the cell state from blowing up. The same holds for the tanh applied to c(t) before the output gate.
# %% answer_hyperparameters
(Note: I wrote this without running the sweep, so it gives my reasoning and what I expect it to show, not measured numbers.) The sweep trains each setting for only 2 epochs on a fifth of the data, so it mostly shows how fast a setting learns, not how good it can get. I expect Adam to converge faster than SGD with momentum here, because it adapts the step size per parameter, and the larger learning rate 3e-3 to get further than 1e-3 in so few epochs; cosine annealing should help because the learning rate shrinks towards the end, so the weights settle instead of jumping around the minimum. A hidden size of 16 may look worse in such short runs, but the notebook warns that this is mostly slower convergence, so I kept hidden size 64, which is still cheap on a CPU. For the final model I chose Adam with lr 3e-3, hidden size 64, CosineAnnealingLR over 15 epochs on all training windows, and early stopping with patience 4, which keeps the weights of the best validation epoch if the model starts to overfit.
