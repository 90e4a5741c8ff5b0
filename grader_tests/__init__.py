"""Hidden grading checks of the Jena LSTM lab (never shipped to students)."""
