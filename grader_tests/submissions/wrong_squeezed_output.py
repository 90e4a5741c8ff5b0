"""Wrong: forward squeezes the forecast to shape (B,) instead of (B, 1)."""
# expect: test_model_shapes=0 "Did you keep the last dimension (shape (batch, 1), not (batch,))?"
# expect: test_forecast=0 "Did you keep the last dimension (shape (batch, 1), not (batch,))?"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)  # one number per sequence
