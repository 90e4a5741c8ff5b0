"""Harmful: the final-model cell ends the kernel's process. Grading goes on: what the hidden checks recorded before
counts, the forecast earns nothing, and the reason says the kernel crashed."""
# expect: test_forecast=0
# %% final_model
import os

os._exit(3)
