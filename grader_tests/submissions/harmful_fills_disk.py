"""Harmful: writes four 250 MiB files into every place the kernel may write. Each place is a size-capped tmpfs that
dies with the kernel (and counts toward its memory): the writes fail when it is full, and grading goes on."""
# flag: suspicious code: reads or writes files, or runs programs
# %% explore_data
import os

for place in (".", "/tmp", os.path.expanduser("~"), "/dev/shm"):
    for i in range(4):
        try:
            with open(os.path.join(place, f"filler{i}"), "wb") as fh:
                for _ in range(250):
                    fh.write(os.urandom(2**20))
        except OSError as err:
            print(place, i, err)
            break
