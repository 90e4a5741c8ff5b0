"""Attack: the final model keeps its LSTM state from one call to the next (the test period runs in order, so carried
state could help). Its export is a stateless graph; the forecasts it gave in the kernel depend on earlier calls, so
it earns no forecast points and is flagged."""
# expect: test_forecast=0 "called again"
# flag: test_forecast: the model's forecasts depend on earlier calls
# %% final_model +
class Stateful(WeatherLSTM):
    def forward(self, x):
        state = getattr(self, "carried", None)
        if state is not None and state[0].shape[1] != x.shape[0]:
            state = None
        out, (h, c) = self.lstm(x, state)
        self.carried = (h.detach(), c.detach())
        return self.head(out[:, -1])


carrying = Stateful(n_features)
carrying.load_state_dict(final_model.state_dict())
final_model = carrying
