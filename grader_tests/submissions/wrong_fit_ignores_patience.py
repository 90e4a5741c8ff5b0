"""Wrong: fit keeps the best weights but never stops early (patience is ignored)."""
# expect: test_fit=0 "epochs without a better validation loss"
# %% training_loop +
def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_loss, best_state = math.inf, None
    for epoch in tqdm(range(epochs), desc="epochs"):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        history["val_loss"].append(evaluate(model, val_loader, loss_fn))
        if scheduler is not None:
            scheduler.step()
        if history["val_loss"][-1] < best_loss:
            best_loss = history["val_loss"][-1]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
