"""Harmful: an exploration cell walks the whole visible filesystem over and over. It is interrupted at its time
limit and grading goes on."""
# cell timeout: 40
# reason: cell 'explore_data' ran past its time limit
# flag: suspicious code: reads or writes files, or runs programs
# %% explore_data
import glob

for _ in range(10_000):
    for path in glob.glob("/**", recursive=True):
        pass
