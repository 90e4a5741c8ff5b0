"""Correct: forward uses the final hidden state of the last layer, h_n[-1], instead of out[:, -1]."""
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        _, (h_n, c_n) = self.lstm(x)  # h_n: (num_layers, B, H)
        return self.head(h_n[-1])  # last layer after the last step: (B, H) -> (B, 1)
