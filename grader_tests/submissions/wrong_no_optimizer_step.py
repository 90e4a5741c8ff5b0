"""Wrong: train_one_epoch forgets optimizer.step(), so the weights never change."""
# expect: test_train_one_epoch=0 "should call optimizer.step() once per batch"
# expect: test_forecast=0 "-> 0% of the forecast points"
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        total += loss.item() * len(x)
        count += len(x)
    return total / count
