"""Wrong: evaluate forgets model.eval() and measures in training mode."""
# expect: test_evaluate=0 "evaluation mode (model.eval())"
# %% training_loop +
def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += loss_fn(model(x), y).item() * len(x)
            count += len(x)
    return total / count
