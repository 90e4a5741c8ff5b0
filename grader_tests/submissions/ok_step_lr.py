"""Correct: final model trained with Adam and a StepLR schedule (x0.3 every 2 epochs)."""
# %% final_model
EPOCHS = 5
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.Adam(final_model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.3)
final_history = fit(final_model, train_loader, val_loader, choose_loss(), optimizer, EPOCHS, scheduler=scheduler, patience=4)
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC")
