"""Wrong: forward runs a dummy LSTM but returns the last temperature, scaled (persistence in disguise)."""
# expect: test_model_shapes=0 "With the LSTM switched off"
# expect: test_forecast=0 "With the LSTM switched off"
# %% model_definition
T_INDEX = data.feature_names.index("T (degC)")


class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.scale = nn.Linear(1, 1)  # a learned scale and offset of the current temperature

    def forward(self, x):
        out, _ = self.lstm(x)  # computed, but not used
        return self.scale(x[:, -1, T_INDEX:T_INDEX + 1])
