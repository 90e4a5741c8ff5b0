"""Attack: a model that reads the first hour, and a later cell that overwrites the model check's recorded evidence
with evidence collected from a correct model. Only what the hidden check recorded in its own cell counts."""
# expect: test_model_shapes=0 "Changing the last hours of the input does not change the forecast"
# expect: test_forecast=0 "-> 0% of the forecast points"
# flag: suspicious code: touches the grader's code or evidence
# %% model_definition
class WeatherLSTM(nn.Module):
    """Many-to-one LSTM forecaster: (B, T, F) float32 -> (B, 1) normalised temperature."""

    def __init__(self, n_features, hidden_size=64, num_layers=1):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, 0])
# %% loss_selection +
import grader_tests.checks
import grader_tests.evidence


class Correct(WeatherLSTM):
    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


grader_tests.evidence.record("model", grader_tests.checks.collect_model(Correct))
