"""Wrong: the model keeps an nn.LSTM but forecasts from the last hour alone with a small MLP: earlier hours never
reach the forecast, and the export holds no LSTM at all."""
# expect: test_model_shapes=0 "contains no nn.LSTM"
# expect: test_forecast=0 "contains no nn.LSTM"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(n_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        return self.head(x[:, -1])  # the last hour only; self.lstm is never used
