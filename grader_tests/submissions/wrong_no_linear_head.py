"""Wrong: no nn.Linear head; the forecast is the sum of the last LSTM features."""
# expect: test_model_shapes=0 "its export has no linear layer"
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        return out[:, -1].sum(dim=1, keepdim=True)  # (B, H) -> (B, 1)
