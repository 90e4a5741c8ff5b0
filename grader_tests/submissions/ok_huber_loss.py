"""Correct: Huber loss (nn.HuberLoss), quadratic near zero and linear for large errors."""
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    return nn.HuberLoss(delta=1.0)
