"""The Jena weather data for the LSTM lab: find, check and read the records, turn them into
windows and loaders for the training and validation periods, and compare with baselines.

Ships beside the notebook, so the lab needs no installation beyond the standard scientific
Python packages (torch, numpy, pandas, matplotlib, tqdm).
"""

from jena_weather.baselines import Ridge, baseline_errors, mae_degc, persistence
from jena_weather.data import JenaDataError, load_jena
from jena_weather.pipeline import HORIZON, INPUT_STEPS, build_windows

__all__ = ["HORIZON", "INPUT_STEPS", "JenaDataError", "Ridge", "baseline_errors", "build_windows", "load_jena",
           "mae_degc", "persistence"]
