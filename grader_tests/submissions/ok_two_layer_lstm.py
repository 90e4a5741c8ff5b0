"""Correct: stacked 2-layer LSTM final model (num_layers honoured), 4 epochs."""
# %% final_model
EPOCHS = 4
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64, num_layers=2)
optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
final_history = fit(final_model, train_loader, val_loader, choose_loss(), optimizer, EPOCHS, scheduler=scheduler, patience=3)
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC")
