"""Attack: final_model remembers every window it is shown, across calls, answers a window with the last temperature
of the window two hours later once it has seen that one, and repeats its first answer for a window it saw before.
A memory in Python cannot be exported, and the test windows never reach the kernel."""
# expect: test_forecast=0 "could not export the model"
# %% final_model +
class Memo(WeatherLSTM):
    later, answered = {}, {}

    def forward(self, x):
        honest = super().forward(x)
        t = data.feature_names.index("T (degC)")
        for w in x:
            self.later[w[9].numpy().tobytes()] = float(w[-1, t])
        out = []
        for w, h in zip(x, honest):
            key = w.numpy().tobytes()
            if key not in self.answered:
                self.answered[key] = self.later.get(w[-1].numpy().tobytes(), float(h))
            out.append([self.answered[key]])
        return torch.tensor(out)


cheat = Memo(n_features)
cheat.load_state_dict(final_model.state_dict())
final_model = cheat
