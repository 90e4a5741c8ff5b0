"""Wrong: forward feeds the zero initial state h0 to the head, so the forecast ignores the input."""
# expect: test_model_shapes=0 "gives the same forecast for different inputs"
# expect: test_forecast=0 "The model gives the same forecast for different inputs"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        h0 = torch.zeros(x.shape[0], self.hidden_size)
        out, _ = self.lstm(x)
        return self.head(h0)
