"""Correct: train_one_epoch clips every gradient component to [-0.5, 0.5] before optimizer.step()."""
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
        optimizer.step()
        total += loss.item() * x.shape[0]
    return total / len(loader.dataset)
