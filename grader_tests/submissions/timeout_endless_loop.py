"""Harmful or careless: an endless loop in the sweep cell. The cell is interrupted at its time limit, the notebook
goes on, and the submission gets its grade and feedback."""
# cell timeout: 40
# reason: cell 'hyperparameter_sweep' ran past its time limit
# %% hyperparameter_sweep
while True:
    pass
