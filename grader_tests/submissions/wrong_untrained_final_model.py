"""Wrong: final_model is a freshly constructed WeatherLSTM that was never trained."""
# expect: test_forecast=0 "-> 0% of the forecast points"
# %% final_model
torch.manual_seed(SEED)
final_model = WeatherLSTM(n_features, hidden_size=64)
optimizer = torch.optim.Adam(final_model.parameters(), lr=2e-3)
print(f"final validation MAE: {mae_degc(data, 'val', forecast(final_model, 'val')):.3f} degC")
