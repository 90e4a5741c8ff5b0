"""Wrong: the model drops a row on its second call (a counter in the class), so it answers the same windows
differently when asked again."""
# expect: test_model_shapes=0 "when called again"
# %% model_definition +
class WeatherLSTM(WeatherLSTM):
    calls = 0

    def forward(self, x):
        WeatherLSTM.calls += 1
        out = super().forward(x)
        return out[:-1] if WeatherLSTM.calls == 2 else out
