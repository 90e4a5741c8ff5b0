"""Correct: MSE loss (nn.MSELoss) instead of MAE; the final model trains with it."""
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    return nn.MSELoss()  # squares the errors: large misses cost more
