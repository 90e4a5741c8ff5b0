"""Wrong: fit returns an empty history without training (a leftover stub), so the final model stays untrained."""
# expect: test_fit=0 "without patience should run"
# expect: test_forecast=0 "-> 0% of the forecast points"
# %% training_loop +
def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    return {"train_loss": [], "val_loss": []}
