"""Correct: LSTM built with batch_first=False; forward permutes the input to (T, B, F)."""
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers)  # expects (T, B, F)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x.permute(1, 0, 2))  # (B, T, F) -> (T, B, F); out is (T, B, H)
        return self.head(out[-1])  # last time step: (B, H) -> (B, 1)
