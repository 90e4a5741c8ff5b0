"""Progress while a class is graded: a tqdm bar on a terminal, plain numbered lines in a log or CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def format_duration(seconds: float) -> str:
    """A rough human duration: '40 s', '12 min', '1 h 05 min'."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Call ``done(line)`` once per finished submission with its one-line summary, then ``close()``."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total, self.count = total, 0
        # sys.stderr looked up now, not at import: a replaced one (pytest's capture, a log file) is honoured
        self.stream = sys.stderr if stream is None else stream
        self.start = time.monotonic()
        self.bar = None
        if self.stream.isatty():
            self.bar = tqdm(total=total, file=self.stream, desc="Grading", unit="submission", dynamic_ncols=True)

    def done(self, line: str) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.write(line, file=self.stream)  # above the bar, which tqdm redraws below it
            self.bar.update(1)
            return
        elapsed = time.monotonic() - self.start
        if self.count < self.total:
            timing = f"ETA {format_duration(elapsed / self.count * (self.total - self.count))}"
        else:
            timing = f"all done in {format_duration(elapsed)}"
        print(f"[{self.count}/{self.total}] {line.strip()} ({timing})", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
