"""Wrong: train_one_epoch forgets loss.backward(), so nothing is learned."""
# expect: test_train_one_epoch=0 "the training loss should fall over 4 epochs"
# expect: test_fit=0 "fit should train the model"
# expect: test_forecast=0 "should beat persistence"
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        optimizer.step()
        total += loss.item() * len(x)
        count += len(x)
    return total / count


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_loss, best_state, waited = math.inf, None, 0
    for epoch in tqdm(range(epochs), desc="epochs"):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        history["val_loss"].append(evaluate(model, val_loader, loss_fn))
        if scheduler is not None:
            scheduler.step()
        if history["val_loss"][-1] < best_loss:
            best_loss, waited = history["val_loss"][-1], 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
