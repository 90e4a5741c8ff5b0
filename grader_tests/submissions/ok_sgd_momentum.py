"""Correct: final model trained with SGD (lr=0.1, momentum=0.9) and a cosine schedule, 6 epochs."""
# %% final_model
EPOCHS = 6
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.SGD(final_model.parameters(), lr=0.1, momentum=0.9)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
final_history = fit(final_model, train_loader, val_loader, choose_loss(), optimizer, EPOCHS, scheduler=scheduler, patience=4)
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC")
