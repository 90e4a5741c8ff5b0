"""Benchmark: grading time per submission and class throughput, as ratios to plain nbgrader.

In one run, on scratch copies of the course, with the same submission for every student:

* overhead: plain ``nbgrader autograde`` of one submission with the ordinary python3 kernel on one
  compute thread, against ``jenalab grade`` of the same submission (sandboxed kernel, one thread,
  sealed test inputs, trusted re-check, gradebook, ledger, feedback), alternating run by run;
* throughput: plain ``nbgrader autograde`` of a class in one command (python3 kernel, both cores),
  against ``jenalab grade`` of the same class with 2 local workers (one thread each), alternating;
* the ceiling for a training-bound notebook: the lab's training step (LSTM(64) and head, batch 256,
  12 steps, Adam) in plain PyTorch, steps per second of one 2-thread process against two 1-thread
  processes side by side;
* ``--simulate N``: a class of N submissions cycling through the corpus, graded once with 2 workers
  (per-submission cost and total).

    .venv/bin/python bench/bench_grading.py [--submission reference] [--repeat 2] [--class-size 6]
    .venv/bin/python bench/bench_grading.py --simulate 100
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader_tests.contract import ASSIGNMENT
from jenalab.corpus import load_corpus, scratch_course, write_submission
from jenalab.course import run_nbgrader
from jenalab.grading import Options, grade_class

COURSE = Path(__file__).resolve().parents[1]
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


TRAINING_STEPS = """
import sys, time, torch
from torch import nn
torch.set_num_threads(int(sys.argv[1]))
lstm, head = nn.LSTM(10, 64, batch_first=True), nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
params = [*lstm.parameters(), *head.parameters()]
optimizer, x, y = torch.optim.Adam(params), torch.randn(256, 12, 10), torch.randn(256, 1)
def step():
    optimizer.zero_grad()
    nn.functional.l1_loss(head(lstm(x)[0][:, -1]), y).backward()
    optimizer.step()
for _ in range(20):
    step()
start = time.perf_counter()
for _ in range(300):
    step()
print(300 / (time.perf_counter() - start))
"""


def training_ceiling() -> tuple[float, float]:
    """Steps per second: one process on 2 threads, and two 1-thread processes running together."""
    def run(threads: int, copies: int) -> float:
        processes = [subprocess.Popen([sys.executable, "-c", TRAINING_STEPS, str(threads)], stdout=subprocess.PIPE, text=True)
                     for _ in range(copies)]
        return sum(float(p.communicate()[0]) for p in processes)
    return run(2, 1), run(1, 2)


def make_course(root: Path, names: list[str]) -> Path:
    scratch_course(COURSE, root)
    corpus = {s.name: s for s in load_corpus(COURSE)}
    for i, name in enumerate(names):
        write_submission(corpus[name], COURSE, root, student=f"student{i:03d}")
    return root


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def plain(root: Path, threads: dict | None = None, student: str | None = None) -> float:
    env = {**os.environ, **(threads or {})}
    selection = ("--student", student) if student else ()
    return timed(lambda: run_nbgrader("autograde", ASSIGNMENT, *selection, "--force", "--Execute.kernel_name=python3",
                                      "--Execute.timeout=1800", root=root, env=env))


def ours(root: Path, workers: int) -> float:
    def grade():
        run = grade_class(root, Options(workers=workers, regrade=True), log=lambda *_: None)
        if run.infrastructure:
            raise SystemExit(f"grading failed: {run.infrastructure[0].message}")
    return timed(grade)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submission", default="reference", help="corpus submission every student hands in")
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs of each comparison (default 2)")
    parser.add_argument("--class-size", type=int, default=6, help="class size of the throughput runs (default 6)")
    parser.add_argument("--simulate", type=int, help="instead: grade a class of N corpus submissions once, 2 workers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jenalab_bench_") as tmp:
        if args.simulate:
            return simulate(Path(tmp), args.simulate)
        single = make_course(Path(tmp) / "single", [args.submission])
        baseline, graded = [], []
        for _ in range(args.repeat):
            baseline.append(plain(single, ONE_THREAD, "student000"))
            graded.append(ours(single, workers=1))
        group = make_course(Path(tmp) / "class", [args.submission] * args.class_size)
        sequential, two = [], []
        for _ in range(args.repeat):  # alternating too: a slow stretch of a shared machine hits both sides
            sequential.append(plain(group))
            two.append(ours(group, workers=2))
        together, apart = training_ceiling()
    print(f"one submission ({args.submission}), one compute thread, {args.repeat} alternating runs:")
    print(f"  plain nbgrader autograde, python3 kernel  {' '.join(f'{s:6.1f}' for s in baseline)} s")
    print(f"  jenalab grade, sandboxed and re-checked   {' '.join(f'{s:6.1f}' for s in graded)} s")
    print(f"  ratio per run {' '.join(f'{g / b:.2f}' for g, b in zip(graded, baseline))}, "
          f"median {statistics.median(g / b for g, b in zip(graded, baseline)):.2f}")
    print(f"class of {args.class_size}, {args.repeat} alternating runs:")
    print(f"  plain nbgrader autograde, one command, python3 kernel, 2 threads  {' '.join(f'{s:6.1f}' for s in sequential)} s")
    print(f"  jenalab grade, 2 workers, 1 thread each                         {' '.join(f'{s:6.1f}' for s in two)} s")
    print(f"  ratio per run {' '.join(f'{p / t:.2f}' for p, t in zip(sequential, two))}, "
          f"median {statistics.median(p / t for p, t in zip(sequential, two)):.2f}; "
          f"{args.class_size / statistics.median(two) * 60:.2f} submissions per minute with 2 workers")
    print(f"training step alone (same shapes, plain PyTorch): 1 process on 2 threads {together:.0f} steps/s, "
          f"2 processes on 1 thread {apart:.0f} steps/s: ceiling {apart / together:.2f}x")
    return 0


def simulate(tmp: Path, size: int) -> int:
    names = [s.name for s in load_corpus(COURSE)]
    course = make_course(tmp / "simulated", list(itertools.islice(itertools.cycle(names), size)))
    start = time.perf_counter()
    run = grade_class(course, Options(workers=2), log=lambda *_: None)
    wall = time.perf_counter() - start
    seconds = [r.seconds for r in run.results]
    print(f"simulated class of {size} ({len(names)} corpus submissions in turn), 2 local workers:")
    print(f"  wall {wall / 60:.1f} min, {wall / size:.1f} s per submission ({size / wall * 60:.2f} per minute); "
          f"worker time per submission: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s; "
          f"ungraded: {len(run.infrastructure)}")
    return 0 if not run.infrastructure else 1


if __name__ == "__main__":
    sys.exit(main())
