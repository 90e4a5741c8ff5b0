"""Benchmark: grading time per submission and class throughput.

In one run, on scratch copies of the course:

* baseline: plain ``nbgrader autograde`` of one submission with the ordinary python3 kernel;
* ``jenalab grade`` of the same submission (sandboxed kernel, evidence, trusted re-check,
  gradebook, ledger, feedback), reported as a ratio to the baseline;
* throughput of ``jenalab grade`` on N submissions with 1 and with 2 local Dask workers.

The submission is the corpus variant ``ok_mse_loss`` (instructor's solutions with MSE, exploration
cells skipped), so that the time is dominated by what grading really does: running the notebook.

    .venv/bin/python bench/bench_grading.py [--submissions 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from grader_tests.corpus import load_corpus, scratch_course, write_submission
from jenalab.course import ASSIGNMENT, run_nbgrader
from jenalab.grading import Options, grade_class

SUBMISSION = "ok_mse_loss"


def make_course(root: Path, students: int) -> Path:
    scratch_course(root)
    submission = next(s for s in load_corpus() if s.name == SUBMISSION)
    for i in range(students):
        write_submission(submission, root / "submitted", student=f"student{i:02d}")
    return root


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=4, help="class size for the throughput runs (default 4)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of the single-submission timings")
    args = parser.parse_args(argv)
    plain, ours, throughput = [], [], {}
    with tempfile.TemporaryDirectory(prefix="jenalab_bench_") as tmp:
        for r in range(args.repeat):
            root = make_course(Path(tmp) / f"single{r}", 1)
            plain.append(timed(lambda: run_nbgrader("autograde", ASSIGNMENT, "--student", "student00", "--force", root=root)))
            ours.append(timed(lambda: grade_class(root, Options(workers=1, regrade=True), log=lambda *_: None)))
        for workers in (1, 2):
            root = make_course(Path(tmp) / f"class{workers}", args.submissions)
            seconds = timed(lambda: grade_class(root, Options(workers=workers), log=lambda *_: None))
            throughput[workers] = args.submissions / seconds * 60
    baseline, graded = statistics.median(plain), statistics.median(ours)
    print(f"one submission ({SUBMISSION}), medians of {args.repeat}:")
    print(f"  plain nbgrader autograde (python3 kernel)     {baseline:7.1f} s")
    print(f"  jenalab grade (sandbox + re-check + feedback) {graded:7.1f} s   ratio {graded / baseline:.2f}")
    print(f"class of {args.submissions}:")
    for workers, per_minute in throughput.items():
        print(f"  {workers} worker(s): {per_minute:5.2f} submissions per minute"
              + (f"   ratio to 1 worker {per_minute / throughput[1]:.2f}" if workers > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
