"""Harmful: starts three processes that hold 1.5 GiB each (more than the 4 GiB the kernel and everything it starts
may use together). Where the grader has control groups the memory limit holds for the whole process tree."""
# flag: suspicious code: reads or writes files, or runs programs
# %% explore_data
import subprocess
import sys
import time

hog = "x = bytearray(1536 * 2**20); x[::4096] = b'x' * len(x[::4096]); import time; time.sleep(60)"
holders = [subprocess.Popen([sys.executable, "-c", hog], stderr=subprocess.DEVNULL) for _ in range(3)]
time.sleep(15)
print("exit codes of the three holders:", [h.poll() for h in holders])
for h in holders:
    h.kill()
