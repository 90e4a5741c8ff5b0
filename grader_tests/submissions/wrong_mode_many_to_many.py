"""Wrong: MODE = "many-to-many" (the task reads 12 hours and makes one forecast)."""
# expect: test_mode=0 "which is not the mode of this task"
# %% mode_answer
MODE = "many-to-many"
