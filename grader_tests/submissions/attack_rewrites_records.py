"""Attack: a model that reads the first hour, and an IPython callback that runs after every cell and publishes, in
the model check's cell, a second record collected from a corrected model. A check's cell must hold exactly the one
record its collector made: the cell earns nothing and the submission is flagged."""
# expect: test_model_shapes=0
# expect: test_forecast=0 "-> 0% of the forecast points"
# flag: test_model_shapes: the hidden check's record was not as the check makes it (2 records instead of one)
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


class Corrected(WeatherLSTM):
    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _after_cell(result):
    if "collect_model(WeatherLSTM)" in result.info.raw_cell:
        import grader_tests.collect as collectors
        collectors.collect_model(Corrected)


get_ipython().events.register("post_run_cell", _after_cell)
