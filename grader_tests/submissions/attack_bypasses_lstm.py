"""Attack: forecast = a linear read of the last hour + a linear map of the mean over the hours + 1e-6 x the LSTM path.
A gradient reaches the LSTM, but the forecast does not come from it: switched off, the forecast still moves."""
# expect: test_model_shapes=0 "With the LSTM switched off"
# expect: test_forecast=0 "With the LSTM switched off"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))
        self.last, self.mean = nn.Linear(n_features, 1), nn.Linear(n_features, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.last(x[:, -1]) + self.mean(x.mean(dim=1)) + 1e-6 * self.head(out[:, -1])
