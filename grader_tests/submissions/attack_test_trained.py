"""Attack: the final model trains on the test period, rebuilt from the data file (possible on a student's machine);
where the test period is not there it falls back to the training period, and gains nothing."""
# flag: suspicious code: reads the data file itself
# %% final_model
try:
    test_period = build_windows(load_jena(), periods=("train", "val", "test"))["test"]
    print("training on the test period")
except Exception as err:
    print("no test period here:", err)
    test_period = data["train"]
cheat_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(test_period.x, test_period.y), batch_size=256, shuffle=True)
EPOCHS = 4
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.Adam(final_model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
final_history = fit(final_model, cheat_loader, val_loader, choose_loss(), optimizer, EPOCHS, scheduler=scheduler)
