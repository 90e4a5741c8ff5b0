"""Wrong: train_one_epoch forgets loss.backward(), so nothing is learned."""
# expect: test_train_one_epoch=0 "Did you call loss.backward()?"
# expect: test_forecast=0 "-> 0% of the forecast points"
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
