"""Correct: fit keeps the best weights with copy.deepcopy(model.state_dict()) and prints each epoch."""
# %% training_loop +
import copy


def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=None, patience=None):
    """Train for up to `epochs` epochs; returns {"train_loss": [...], "val_loss": [...]}."""
    history = {"train_loss": [], "val_loss": []}
    best_val = float("inf")
    best_weights = copy.deepcopy(model.state_dict())
    bad_epochs = 0
    for epoch in range(epochs):
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer)
        val_loss = evaluate(model, val_loader, loss_fn)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        print(f"epoch {epoch + 1}: train {train_loss:.4f}, val {val_loss:.4f}")
        if scheduler:
            scheduler.step()
        if val_loss < best_val:
            best_val = val_loss
            best_weights = copy.deepcopy(model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
            if patience and bad_epochs >= patience:
                print("early stopping")
                break
    if patience:
        model.load_state_dict(best_weights)
    return history
