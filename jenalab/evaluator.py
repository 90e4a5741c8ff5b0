"""The sandboxed evaluator: exported models run on given inputs in a fresh process that returns numbers.

The trusted grading process never runs what a kernel exported. It checks each archive
(`grader_tests.archive`) and hands the resulting programs, with the inputs and the runs to make, to
a new process in the grading sandbox (no network, nothing of the course in view, limits for its
whole process tree, only tmpfs to write to) that interprets them (`jenalab/program_runner.py`) and
writes the outputs back. A program that fails, runs out of time or of memory fails its own runs with
the reason (the student's outcome); an evaluator that cannot start at all is the grader's failure.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from grader_tests.archive import Program
from grader_tests.probes import Run
from jenalab import sandbox_process
from jenalab.sandbox import GiB, MiB, Mount, SandboxLimits, plan

RUNNER = Path(__file__).with_name("program_runner.py")
LIMITS = SandboxLimits(memory_bytes=3 * GiB, max_processes=32, cpu_threads=1, cpu_seconds=300, wall_seconds=300,
                       tmpfs_bytes=64 * MiB)
JOB, SCRIPT = "/grading/job", "/grading/program_runner.py"  # where the evaluator sees them (bubblewrap modes)


class EvaluatorFailure(RuntimeError):
    """The evaluator could not run at all (not a model's doing)."""


def evaluate(programs: dict[str, Program], inputs: dict[str, np.ndarray], runs: list[Run],
             limits: SandboxLimits = LIMITS) -> dict[str, np.ndarray | str]:
    """The output of every run (an array), or why it failed (a string)."""
    folder = Path(tempfile.mkdtemp(prefix=f"jenalab-evaluator-{os.getpid()}-"))
    try:
        job, private, work = folder / "job", folder / "private", folder / "work"
        for made in (job, private, work):
            made.mkdir()
        order = [name for name in programs if any(r.program == name for r in runs)]
        (job / "job.json").write_text(json.dumps({
            "threads": limits.cpu_threads, "programs": {name: programs[name].to_json() for name in order},
            "requests": [asdict(r) for r in runs]}))
        for name in order:
            with open(job / f"{name}.bin", "wb") as fh:
                for tensor in programs[name].tensors.values():
                    fh.write(tensor.data)
        np.savez(job / "inputs.npz", **inputs)
        shutil.copy(RUNNER, job.parent / RUNNER.name)
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        isolated = plan(limits).bwrap
        mounts = [Mount(str(job), JOB), Mount(str(folder / RUNNER.name), SCRIPT)]
        argv = [sys.executable, "-I", "-B", SCRIPT if isolated else str(folder / RUNNER.name), JOB if isolated else str(job)]
        child, group = sandbox_process.start(argv, limits, private, str(work), mounts if isolated else [],
                                             name="evaluator", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)
        try:
            out, err = child.communicate(timeout=limits.wall_seconds)
            stopped = f"it ended with status {child.returncode}"
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            stopped = f"it ran longer than {limits.wall_seconds} s"
        finally:
            if group is not None:
                group.remove()
        if b"ready" not in err.split(b"\n", 1)[0] and not out:
            raise EvaluatorFailure(f"the evaluator did not start ({stopped}): {err.decode(errors='replace')[-500:]}")
        return _results(out, order, runs, stopped)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _results(out: bytes, order: list[str], runs: list[Run], stopped: str) -> dict[str, np.ndarray | str]:
    results, position = {}, 0
    for name in order:
        wanted = [r.id for r in runs if r.program == name]
        if position + 8 > len(out):  # it died while running this program (a memory or time limit, say)
            results.update(dict.fromkeys(wanted, f"the evaluator stopped while running this model: {stopped}"))
            continue
        size, = struct.unpack("<Q", out[position:position + 8])
        with np.load(io.BytesIO(out[position + 8:position + 8 + size]), allow_pickle=False) as frame:
            for run in wanted:
                results[run] = frame[run] if run in frame.files else str(frame.get(f"{run}:error", "no result"))
        position += 8 + size
    return results
