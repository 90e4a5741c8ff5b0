"""Benchmark: the instructor notebook end to end, and the efficiency of its training step.

In one run:

* a float32 matmul (2048 x 2048) on the current thread count: the machine's attainable FLOP/s;
* the lab's training step (LSTM(64) + head, batch 256, 12 steps, 10 features, Adam, L1 loss):
  achieved FLOP/s and their ratio to the matmul, on 1 and on 2 threads;
* the source notebook executed headless with nbclient (kernel start included) on one compute
  thread, as in grading, with its slowest cells and the test-period MAE of its final_model,
  scored outside the notebook.

    .venv/bin/python bench/bench_notebook.py
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import torch
from nbclient import NotebookClient
from torch import nn

from jena_weather.baselines import mae_degc, persistence
from jena_weather.pipeline import SPLITS, build_windows
from jenalab.course import source_notebook

ROOT = Path(__file__).resolve().parents[1]  # the course folder

B, T, F, H = 256, 12, 10, 64


def matmul_flops(n: int = 2048, repeat: int = 10) -> float:
    a = torch.randn(n, n)
    a @ a
    start = time.perf_counter()
    for _ in range(repeat):
        a @ a
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def training_step_flops(steps: int = 40) -> float:
    """FLOP/s of forward + backward + Adam step; FLOPs counted for the matmuls (backward = 2x forward)."""
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, batch_first=True)
    head = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 1))
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    x, y = torch.randn(B, T, F), torch.randn(B, 1)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out, _ = lstm(x)
        nn.functional.l1_loss(head(out[:, -1]), y).backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    forward = B * (T * 2 * 4 * H * (F + H) + 2 * (H * H + H))
    return 3 * forward / seconds


def run_notebook() -> tuple[float, list[tuple[str, float]], np.ndarray]:
    notebook = nbformat.read(source_notebook(ROOT), as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        evidence = Path(tmp) / "predictions.npy"
        notebook.cells.append(nbformat.v4.new_code_cell(
            "import numpy\nfrom jena_weather.pipeline import SPLITS as _SPLITS, build_windows as _build\n"
            f"with torch.no_grad():\n    numpy.save({str(evidence)!r}, final_model.eval()(_build(periods=_SPLITS)['test'].x).numpy())"))
        start = time.perf_counter()
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute(
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        seconds = time.perf_counter() - start
        predictions = np.load(evidence)
    cells = []
    for cell in notebook.cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing:
            began, ended = (dt.datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                            for k in ("iopub.execute_input", "shell.execute_reply"))
            cells.append((cell.id, (ended - began).total_seconds()))
    return seconds, sorted(cells, key=lambda c: -c[1])[:5], predictions


def main() -> int:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        peak, achieved = matmul_flops(), training_step_flops()
        print(f"{threads} thread(s): matmul {peak / 1e9:6.1f} GFLOP/s, training step {achieved / 1e9:5.1f} GFLOP/s, "
              f"ratio {achieved / peak:.2f}")
    seconds, slowest, predictions = run_notebook()
    windows = build_windows(periods=SPLITS)
    mae, reference = mae_degc(windows, "test", predictions), mae_degc(windows, "test", persistence(windows, "test"))
    print(f"source notebook, headless, one compute thread, kernel start included: {seconds:.1f} s")
    print("  slowest cells: " + ", ".join(f"{cid} {s:.1f} s" for cid, s in slowest))
    print(f"  final_model test MAE {mae:.3f} degC (persistence {reference:.3f}, ratio {mae / reference:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
