"""Wrong: train_one_epoch returns the mean loss as a tensor (no .item())."""
# expect: test_train_one_epoch=0 "should return the mean loss as a Python float (use loss.item()); it returned a Tensor"
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total, count = 0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(x)
        count += len(x)
    return total / count
