"""Harmful: after training, the final-model cell ignores interrupts and loops. The kernel does not stop when the cell
is interrupted at its time limit: the run ends there, and what was recorded before counts."""
# cell timeout: 40
# expect: test_forecast=0 "the kernel did not stop"
# reason: the kernel did not stop after cell 'final_model' was interrupted
# %% final_model +
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
