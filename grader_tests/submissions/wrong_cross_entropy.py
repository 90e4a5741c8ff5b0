"""Wrong: choose_loss returns nn.CrossEntropyLoss(), a classification loss."""
# expect: test_loss=0 "a classification loss"
# expect: test_forecast=0 "-> 0% of the forecast points"
# %% loss_selection
def choose_loss():
    """Return the torch.nn loss module instance used to train the forecaster."""
    return nn.CrossEntropyLoss()
