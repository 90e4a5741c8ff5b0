"""Shared code of the Jena LSTM lab: data pipeline, baselines, grading and calibration."""
