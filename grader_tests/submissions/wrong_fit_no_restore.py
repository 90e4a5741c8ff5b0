"""Wrong: fit stops early but keeps the last weights instead of restoring the best epoch."""
# expect: test_fit=0 "fit should restore the weights of the best epoch"
# %% training_loop +
def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_loss, waited = math.inf, 0
    for epoch in tqdm(range(epochs), desc="epochs"):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        history["val_loss"].append(evaluate(model, val_loader, loss_fn))
        if scheduler is not None:
            scheduler.step()
        if history["val_loss"][-1] < best_loss:
            best_loss, waited = history["val_loss"][-1], 0
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    return history
