"""Correct: evaluate runs under torch.inference_mode() and averages the batch losses with np.average(weights=sizes)."""
# %% training_loop +
def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    losses, sizes = [], []
    with torch.inference_mode():
        for x, y in loader:
            losses.append(loss_fn(model(x), y).item())
            sizes.append(len(x))
    return float(np.average(losses, weights=sizes))
