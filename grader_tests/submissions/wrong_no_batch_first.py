"""Wrong: the LSTM is created without batch_first=True but fed (B, T, F) batches directly."""
# expect: test_model_shapes=0 "Did you create the LSTM with batch_first=True"
# expect: test_forecast=0 "Did you create the LSTM with batch_first=True"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])
