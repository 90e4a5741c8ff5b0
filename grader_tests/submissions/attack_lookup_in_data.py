"""Attack: final_model looks every window up in the notebook's data and returns its stored target (80/80 while the
test period was in `data`); a window it does not know gets the temperature now (persistence). The notebook has no
test period, and a look-up in Python cannot be exported."""
# expect: test_forecast=0 "could not export the model"
# %% final_model
T_INDEX = data.feature_names.index("T (degC)")
known = {}
for split in ("train", "val", "test"):
    try:
        windows = data[split]
    except KeyError:
        continue
    for x, y in zip(windows.x, windows.y):
        known[x.numpy().tobytes()] = float(y)


class Lookup(WeatherLSTM):
    def forward(self, x):
        return torch.tensor([[known.get(w.numpy().tobytes(), float(w[-1, T_INDEX]))] for w in x])


final_model = Lookup(n_features)
