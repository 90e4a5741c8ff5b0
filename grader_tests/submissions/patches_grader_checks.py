"""A model that reads only the first hour, plus a cell that patches the in-kernel check to pass it.
The trusted re-check, outside the kernel, must overrule the patched verdict and flag the submission."""
# expect: test_model_shapes=0 "Did you take the last time step"
# expect: test_forecast=0 "-> 0% of the forecast points"
# %% model_definition
import grader_tests.checks

grader_tests.checks.JUDGES["model"] = lambda evidence: None


class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, 0])
