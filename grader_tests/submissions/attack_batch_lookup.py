"""Attack: final_model answers a window with the last temperature of the window in the same batch that starts two
hours later (that hour is the target); windows without such a partner get the trained LSTM's forecast. Such a
look-up is Python, not tensor operations: the model cannot be exported, and the test windows never reach it."""
# expect: test_forecast=0 "could not export the model"
# %% final_model +
class BatchLookup(WeatherLSTM):
    def forward(self, x):
        honest = super().forward(x)
        t = data.feature_names.index("T (degC)")
        later = {w[9].numpy().tobytes(): float(w[-1, t]) for w in x}  # row 9 of the later window = row 11 here
        return torch.tensor([[later.get(w[-1].numpy().tobytes(), float(h))] for w, h in zip(x, honest)])


cheat = BatchLookup(n_features)
cheat.load_state_dict(final_model.state_dict())
final_model = cheat
