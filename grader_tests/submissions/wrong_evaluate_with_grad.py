"""Wrong: evaluate does not use torch.no_grad(), so it builds autograd graphs."""
# expect: test_evaluate=0 "wrap the loop in torch.no_grad()"
# %% training_loop +
def evaluate(model, loader, loss_fn):
    """Mean loss per sample of model on loader (float), without gradients."""
    model.eval()
    total, count = 0.0, 0
    for x, y in loader:
        total += loss_fn(model(x), y).item() * len(x)
        count += len(x)
    return total / count
