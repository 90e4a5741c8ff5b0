"""Wrong: train_one_epoch averages the per-batch losses without weighting by batch size."""
# expect: test_train_one_epoch=0 "Weight each batch's loss by its size"
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    batch_losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
    return sum(batch_losses) / len(batch_losses)
