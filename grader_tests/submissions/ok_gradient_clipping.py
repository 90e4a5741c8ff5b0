"""Correct: train_one_epoch clips the gradient norm to 1.0 before optimizer.step()."""
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # against exploding gradients
        optimizer.step()
        total += loss.item() * len(x)
        count += len(x)
    return total / count
