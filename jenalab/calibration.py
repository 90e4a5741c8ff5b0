"""Calibrate the forecast thresholds on the data in use.

The reference solution (the instructor notebook's own solution cells, with the notebook's
training budget) is trained over many seeds; the baselines and common mistakes are measured on
the same test period. Every error is a ratio to the persistence MAE on that period. Tiers are
accepted only when the reference passes the full-credit tier in at least 99% of seeds and every
baseline fails every tier.
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jenalab.course import COURSE_ROOT, solved_cells

REQUIRED_PASS_RATE = 0.99
# Least distance between the worst reference seed and full credit: covers other CPUs and thread
# counts (see "Determinism" in bench/README.md).
MARGIN = 0.02
SOLUTION_CELLS = ("model_definition", "loss_selection", "training_loop")
PROVIDED_CELLS = ("forecast_helper",)  # locked cells the final_model cell relies on


def fingerprint(windows) -> dict:
    """What the thresholds were measured on: the file, the features, the split sizes."""
    return {
        "sha256": windows.sha256,
        "features": windows.feature_names,
        "rows": windows.row_counts,
        "windows": {name: len(windows[name]) for name in ("train", "val", "test")},
    }


def fingerprint_mismatch(calibrated: dict | None, windows) -> str | None:
    """Why thresholds calibrated on other data do not fit this data (None when they fit)."""
    if not calibrated:
        return "the thresholds carry no data fingerprint (they were not calibrated)"
    current = fingerprint(windows)
    differences = [key for key in current if calibrated.get(key) != current[key]]
    if not differences:
        return None
    return (f"thresholds were calibrated on other data (different {', '.join(differences)}; calibrated on sha256 "
            f"{str(calibrated.get('sha256'))[:12]}..., grading on {current['sha256'][:12]}...): run `jenalab calibrate`")


def reference_namespace(seed: int, root: Path = COURSE_ROOT, epochs: int | None = None) -> dict:
    """Run the notebook's setup and solution cells with this seed; return their namespace."""
    cells = solved_cells(root)
    namespace: dict = {}
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        exec(cells["setup_imports"], namespace)
        namespace["SEED"] = seed
        exec("torch.manual_seed(SEED); np.random.seed(SEED)", namespace)
        exec(cells["load_data"], namespace)
        for cell in SOLUTION_CELLS + PROVIDED_CELLS:
            exec(cells[cell], namespace)
        final = cells["final_model"]
        if epochs is not None:  # a reduced budget, for the quick calibration in CI
            if "EPOCHS = " not in final:
                raise ValueError("the final_model cell must set its budget as `EPOCHS = <n>` for a reduced calibration")
            final = final.replace("EPOCHS = ", f"EPOCHS = {epochs}  # reduced; was ", 1)
        exec(final, namespace)
    return namespace


def test_predictions(model, windows) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(x) for x in windows["test"].x.split(4096)]).numpy()


def reference_run(seed: int, epochs: int | None = None) -> dict:
    """Train the reference solution with one seed; its test MAE ratio and predictions' checksum."""
    from jenalab.baselines import mae_degc, persistence

    namespace = reference_namespace(seed, epochs=epochs)
    windows = namespace["data"]
    predictions = test_predictions(namespace["final_model"], windows)
    reference = mae_degc(windows, "test", persistence(windows, "test"))
    mae = mae_degc(windows, "test", predictions)
    return {"seed": seed, "mae": mae, "ratio": mae / reference,
            "predictions_sha256": hashlib.sha256(predictions.tobytes()).hexdigest()}


def baseline_runs(epochs: int | None = None) -> dict[str, float]:
    """Ratios of the baselines and common mistakes, each with the notebook's training budget."""
    import torch
    from torch import nn

    from jenalab.baselines import Ridge, mae_degc, persistence

    namespace = reference_namespace(0, epochs=0)  # definitions and data only
    windows, model_class = namespace["data"], namespace["WeatherLSTM"]
    reference = mae_degc(windows, "test", persistence(windows, "test"))
    ratios = {"persistence": 1.0, "ridge": mae_degc(windows, "test", Ridge(windows).predict("test")) / reference}

    class FirstStep(model_class):  # the classic mistake: reading the LSTM output at the first hour
        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, 0])

    torch.manual_seed(0)
    ratios["untrained model"] = mae_degc(windows, "test", test_predictions(model_class(windows.n_features), windows)) / reference
    ratios["input ignored (training mean)"] = mae_degc(windows, "test", np.zeros(len(windows["test"]))) / reference
    budget = epochs if epochs is not None else int(solved_cells()["final_model"].split("EPOCHS = ")[1].split()[0])
    torch.manual_seed(0)
    first = FirstStep(windows.n_features)
    optimizer = torch.optim.Adam(first.parameters(), lr=2e-3)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        namespace["fit"](first, namespace["train_loader"], namespace["val_loader"], nn.L1Loss(), optimizer, budget)
    ratios["first time step"] = mae_degc(windows, "test", test_predictions(first, windows)) / reference
    return ratios


@dataclass
class Calibration:
    fingerprint: dict
    reference: list[dict]  # one run per seed
    baselines: dict[str, float]
    tiers: list[dict]
    accepted: bool
    problems: list[str]


def choose_tiers(ratios: list[float], baselines: dict[str, float]) -> tuple[list[dict], list[str]]:
    """Full credit up to halfway between the reference's worst seed (the 99th percentile) and the
    best baseline, never closer to the reference than MARGIN; half and a fifth of the credit in
    equal steps towards the best baseline, which must itself fail every tier."""
    worst = sorted(ratios)[max(0, int(np.ceil(REQUIRED_PASS_RATE * len(ratios))) - 1)]
    best_baseline = min(baselines.values())
    full = worst + max(MARGIN, (best_baseline - worst) / 2)
    step = (best_baseline - full) / 3
    tiers = [{"max_ratio": round(full, 4), "fraction": 1.0},
             {"max_ratio": round(full + step, 4), "fraction": 0.5},
             {"max_ratio": round(full + 2 * step, 4), "fraction": 0.2}]
    problems = []
    passed = sum(r <= tiers[0]["max_ratio"] for r in ratios) / len(ratios)
    if passed < REQUIRED_PASS_RATE:
        problems.append(f"the reference passes the full-credit tier in {passed:.0%} of seeds (needs {REQUIRED_PASS_RATE:.0%})")
    for name, ratio in baselines.items():
        if ratio <= tiers[-1]["max_ratio"]:
            problems.append(f"baseline '{name}' (ratio {ratio:.3f}) would earn points (lowest tier {tiers[-1]['max_ratio']:.3f})")
    if step <= 0:
        problems.append(f"the reference (worst {worst:.3f} + margin) does not beat the best baseline ({best_baseline:.3f})")
    return tiers, problems


def calibrate(seeds: int = 20, processes: int = 2, epochs: int | None = None, log=print) -> Calibration:
    """Train the reference over seeds (in parallel processes) and the baselines; choose tiers."""
    from jenalab.pipeline import build_windows

    windows = build_windows()
    log(f"Calibrating on {windows.source}: {seeds} seeds, {processes} processes"
        + (f", reduced budget of {epochs} epochs" if epochs is not None else ""))
    with ProcessPoolExecutor(max_workers=processes, initializer=_one_thread_each, initargs=(processes,)) as pool:
        baseline_future = pool.submit(baseline_runs, epochs)
        runs = []
        for run in pool.map(reference_run, range(seeds), [epochs] * seeds):
            runs.append(run)
            log(f"  seed {run['seed']:>3}: MAE {run['mae']:.3f} degC, ratio {run['ratio']:.4f}")
        baselines = baseline_future.result()
    for name, ratio in baselines.items():
        log(f"  {name:<30} ratio {ratio:.4f}")
    tiers, problems = choose_tiers([r["ratio"] for r in runs], baselines)
    return Calibration(fingerprint(windows), runs, baselines, tiers, not problems, problems)


def _one_thread_each(processes: int) -> None:
    import torch

    torch.set_num_threads(max(1, 2 // processes))


def write_thresholds(calibration: Calibration, path: Path | None = None) -> None:
    from grader_tests.checks import THRESHOLDS_FILE

    path = path or THRESHOLDS_FILE
    ratios = [r["ratio"] for r in calibration.reference]
    document = {
        "metric": "test-period MAE of final_model divided by the persistence MAE on the same period",
        "tiers": calibration.tiers,
        "fingerprint": calibration.fingerprint,
        "reference": {"seeds": len(ratios), "min": min(ratios), "median": statistics.median(ratios), "max": max(ratios),
                      "ratios": [round(r, 5) for r in ratios]},
        "baselines": {name: round(ratio, 5) for name, ratio in calibration.baselines.items()},
        "rule": f"reference passes the full tier in >= {REQUIRED_PASS_RATE:.0%} of seeds; every baseline fails every tier",
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def write_report(calibration: Calibration, directory: Path, command: str = "jenalab calibrate") -> Path:
    """report.md with the distributions, tiers and acceptance, and mae.png with all on one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    ratios = [r["ratio"] for r in calibration.reference]
    right = 1.8  # baselines beyond this are drawn at the edge, with their value
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(ratios, np.random.default_rng(0).uniform(-0.15, 0.15, len(ratios)), "o", alpha=0.7,
            label=f"reference solution, {len(ratios)} seeds")
    for i, (name, ratio) in enumerate(sorted(calibration.baselines.items(), key=lambda kv: kv[1])):
        y = 0.45 + 0.15 * (i % 3)
        ax.plot([min(ratio, right)], [y], "s")
        label = name if ratio <= right else f"{name} ({ratio:.2f}) >"
        ax.annotate(label, (min(ratio, right), y), textcoords="offset points", xytext=(4, 4), fontsize=8,
                    ha="left" if ratio <= right * 0.8 else "right")
    for tier in calibration.tiers:
        ax.axvline(tier["max_ratio"], color="k", ls="--", lw=0.8)
        ax.annotate(f"{tier['fraction']:g}", (tier["max_ratio"], 0.95), fontsize=8, xytext=(2, 0), textcoords="offset points")
    ax.set_xlim(min(ratios) - 0.05, right + 0.02)
    ax.set_ylim(-0.3, 1.05)
    ax.set_yticks([])
    ax.set_xlabel("test-period MAE / persistence MAE (dashed: tier limits, labelled with the fraction of the points)")
    ax.set_title("Forecast thresholds: reference over seeds, baselines, tiers")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "mae.png", dpi=110)
    plt.close(fig)

    fp = calibration.fingerprint
    lines = [
        "# Forecast threshold calibration", "",
        f"Produced by `{command}`. Data: sha256 `{fp['sha256']}`, {len(fp['features'])} features, "
        f"rows {fp['rows']}, windows {fp['windows']}.", "",
        f"**{'Accepted' if calibration.accepted else 'REJECTED'}**: " + ("; ".join(calibration.problems) or
            f"the reference earns full credit in {sum(r <= calibration.tiers[0]['max_ratio'] for r in ratios)} of "
            f"{len(ratios)} seeds (rule: at least {REQUIRED_PASS_RATE:.0%}) and every baseline fails every tier."),
        "", "![MAE ratios](mae.png)", "",
        "How every corpus submission is graded with these tiers: [corpus.md](corpus.md) (`jenalab corpus`).", "",
        "| tier | MAE / persistence at most | fraction of the 30 points |", "|---|---|---|",
        *(f"| {i + 1} | {t['max_ratio']:.4f} | {t['fraction']:g} |" for i, t in enumerate(calibration.tiers)),
        "", f"Reference over {len(ratios)} seeds: min {min(ratios):.4f}, median {statistics.median(ratios):.4f}, "
        f"max {max(ratios):.4f} (MAE {min(r['mae'] for r in calibration.reference):.3f}..{max(r['mae'] for r in calibration.reference):.3f} degC).",
        "", "| baseline | MAE / persistence |", "|---|---|",
        *(f"| {name} | {ratio:.4f} |" for name, ratio in sorted(calibration.baselines.items(), key=lambda kv: kv[1])),
    ]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
