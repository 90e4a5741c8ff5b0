"""Calibrate the forecast thresholds on the data in use.

The reference solution (the instructor notebook's own solution cells, with the notebook's
training budget) is trained over many seeds; the baselines and common mistakes are measured on
the same test period. Every error is a ratio to the persistence MAE on that period. Tiers are
accepted only when the reference passes the full-credit tier in at least 99% of seeds and every
baseline fails every tier.

Two more numbers come from the same runs. The *validation bar* that the notebook shows students:
the reference is also trained with shorter budgets, and the bar is the highest validation-period
ratio below which at least 99% of all runs earn full credit on the test period. The *plausibility
bound*: a test ratio this far below the best reference seed is flagged for a person to look at.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader_tests.contract import POINTS_OF_CHECK, PROVIDED_CELLS, SOLUTION_CELLS
from jenalab.course import solved_cells, source_notebook

REQUIRED_PASS_RATE = 0.99
# Least distance between the worst reference seed and full credit: covers other CPUs and thread
# counts (see "Determinism" in bench/README.md).
MARGIN = 0.02
# A test ratio this much below the best reference seed is flagged as implausibly good.
IMPLAUSIBLE_MARGIN = 0.15
SHORT_BUDGETS = (1, 2, 3)  # epochs of the extra reference runs behind the validation bar
BAR_LINE = re.compile(r"^VALIDATION_BAR = [0-9.]+", flags=re.M)


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


def evaluation_windows():
    """All three periods, normalised as the notebook's training and validation periods are."""
    from jena_weather.pipeline import SPLITS, build_windows

    return build_windows(periods=SPLITS)


def reference_namespace(seed: int, root: Path, epochs: int | None = None) -> dict:
    """Run the notebook's provided and solution cells with this seed; return their namespace."""
    cells = solved_cells(root)
    namespace: dict = {}
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        exec(cells["setup_imports"], namespace)
        namespace["SEED"] = seed
        exec("torch.manual_seed(SEED); np.random.seed(SEED)", namespace)
        exec(cells["load_data"], namespace)
        for cell in [c for c in SOLUTION_CELLS if c != "final_model"] + [c for c in PROVIDED_CELLS if c not in ("setup_imports", "load_data")]:
            exec(cells[cell], namespace)
        final = cells["final_model"]
        if epochs is not None:  # a reduced budget: the bar's short runs, or a quick check
            if "EPOCHS = " not in final:
                raise ValueError("the final_model cell must set its budget as `EPOCHS = <n>` for a reduced calibration")
            final = final.replace("EPOCHS = ", f"EPOCHS = {epochs}  # reduced; was ", 1)
        exec(final, namespace)
    return namespace


def predictions(model, windows, split: str) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(x) for x in windows[split].x.split(4096)]).numpy()


def reference_run(seed: int, root: Path, epochs: int | None = None) -> dict:
    """Train the reference solution with one seed: its test and validation ratios to persistence."""
    from jena_weather.baselines import mae_degc, persistence

    model = reference_namespace(seed, root, epochs=epochs)["final_model"]
    windows = evaluation_windows()
    ratios = {}
    for split in ("test", "val"):
        predicted = predictions(model, windows, split)
        ratios[split] = mae_degc(windows, split, predicted) / mae_degc(windows, split, persistence(windows, split))
        if split == "test":
            mae, checksum = mae_degc(windows, split, predicted), hashlib.sha256(predicted.tobytes()).hexdigest()
    return {"seed": seed, "epochs": epochs, "mae": mae, "ratio": ratios["test"], "val_ratio": ratios["val"],
            "predictions_sha256": checksum}


def baseline_runs(root: Path, epochs: int | None = None) -> dict[str, float]:
    """Ratios of the baselines and common mistakes, each with the notebook's training budget."""
    import torch
    from torch import nn

    from jena_weather.baselines import Ridge, mae_degc, persistence

    namespace = reference_namespace(0, root, epochs=0)  # definitions and data only
    model_class = namespace["WeatherLSTM"]
    windows = evaluation_windows()
    reference = mae_degc(windows, "test", persistence(windows, "test"))
    ratios = {"persistence": 1.0, "ridge": mae_degc(windows, "test", Ridge(windows).predict("test")) / reference}

    class FirstStep(model_class):  # the classic mistake: reading the LSTM output at the first hour
        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, 0])

    torch.manual_seed(0)
    untrained = model_class(windows.n_features)
    ratios["untrained model"] = mae_degc(windows, "test", predictions(untrained, windows, "test")) / reference
    ratios["input ignored (training mean)"] = mae_degc(windows, "test", np.zeros(len(windows["test"]))) / reference
    budget = epochs if epochs is not None else notebook_budget(root)
    torch.manual_seed(0)
    first = FirstStep(windows.n_features)
    optimizer = torch.optim.Adam(first.parameters(), lr=2e-3)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        namespace["fit"](first, namespace["train_loader"], namespace["val_loader"], nn.L1Loss(), optimizer, budget)
    ratios["first time step"] = mae_degc(windows, "test", predictions(first, windows, "test")) / reference
    return ratios


def notebook_budget(root: Path) -> int:
    return int(solved_cells(root)["final_model"].split("EPOCHS = ")[1].split()[0])


@dataclass
class Calibration:
    fingerprint: dict
    reference: list[dict]  # one run per seed, the notebook's budget
    baselines: dict[str, float]
    tiers: list[dict]
    accepted: bool
    problems: list[str]
    short_runs: list[dict] = field(default_factory=list)  # the reference with shorter budgets
    validation_bar: float | None = None
    implausible_below: float | None = None


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


def choose_validation_bar(runs: list[dict], full_tier: float) -> tuple[float | None, list[str]]:
    """The highest validation ratio V such that at least 99% of the runs with a validation ratio up to V
    earn full credit on the test period; the notebook's own budget must meet it in 99% of seeds."""
    ordered = sorted(runs, key=lambda r: r["val_ratio"])
    bar, passed = None, 0
    for count, run in enumerate(ordered, start=1):
        passed += run["ratio"] <= full_tier
        if passed / count >= REQUIRED_PASS_RATE:
            bar = run["val_ratio"]
    if bar is None:
        return None, ["no validation bar exists: too few runs earn full credit on the test period"]
    full_budget = [r["val_ratio"] for r in runs if r["epochs"] is None]
    met = sum(v <= bar for v in full_budget) / len(full_budget)
    problems = [] if met >= REQUIRED_PASS_RATE else [
        f"the reference meets the validation bar {bar:.4f} in only {met:.0%} of seeds (needs {REQUIRED_PASS_RATE:.0%})"]
    return round(bar, 4), problems


def calibrate(root: Path, seeds: int = 20, processes: int = 2, epochs: int | None = None, bar_seeds: int = 5,
              log=print) -> Calibration:
    """Train the reference over seeds (in parallel processes), its short runs and the baselines; choose
    tiers, the validation bar and the plausibility bound."""
    windows = evaluation_windows()
    log(f"Calibrating on {windows.source}: {seeds} seeds, {processes} processes"
        + (f", reduced budget of {epochs} epochs" if epochs is not None else "")
        + (f"; {bar_seeds} seeds of {', '.join(map(str, SHORT_BUDGETS))} epochs for the validation bar" if bar_seeds else ""))
    jobs = [(seed, None if epochs is None else epochs) for seed in range(seeds)]
    jobs += [(seed, budget) for budget in SHORT_BUDGETS for seed in range(bar_seeds)]
    with ProcessPoolExecutor(max_workers=processes, initializer=_one_thread_each, initargs=(processes,)) as pool:
        baseline_future = pool.submit(baseline_runs, root, epochs)
        runs = []
        for run in pool.map(reference_run, *zip(*[(seed, root, budget) for seed, budget in jobs])):
            runs.append(run)
            log(f"  seed {run['seed']:>3}, {run['epochs'] or 'notebook'} epochs: MAE {run['mae']:.3f} degC, "
                f"test ratio {run['ratio']:.4f}, validation ratio {run['val_ratio']:.4f}")
        baselines = baseline_future.result()
    for name, ratio in baselines.items():
        log(f"  {name:<30} ratio {ratio:.4f}")
    reference, short = runs[:seeds], runs[seeds:]
    if epochs is not None:  # a reduced calibration: its runs stand for the notebook's budget
        for run in reference:
            run["epochs"] = None
    tiers, problems = choose_tiers([r["ratio"] for r in reference], baselines)
    bar, bar_problems = choose_validation_bar(runs, tiers[0]["max_ratio"])
    best = min(r["ratio"] for r in reference)
    return Calibration(fingerprint(windows), reference, baselines, tiers, not (problems + bar_problems),
                       problems + bar_problems, short, bar, round(best * (1 - IMPLAUSIBLE_MARGIN), 4))


def _one_thread_each(processes: int) -> None:
    import torch

    torch.set_num_threads(max(1, 2 // processes))


def write_thresholds(calibration: Calibration, path: Path) -> None:
    ratios = [r["ratio"] for r in calibration.reference]
    document = {
        "metric": "test-period MAE of final_model divided by the persistence MAE on the same period",
        "tiers": calibration.tiers,
        "implausible_below": calibration.implausible_below,
        "validation_bar": {"max_ratio": calibration.validation_bar,
                           "metric": "validation-period MAE divided by the persistence MAE on the validation period"},
        "fingerprint": calibration.fingerprint,
        "reference": {"seeds": len(ratios), "min": min(ratios), "median": statistics.median(ratios), "max": max(ratios),
                      "ratios": [round(r, 5) for r in ratios],
                      "validation_ratios": [round(r["val_ratio"], 5) for r in calibration.reference]},
        "short_runs": [{key: (round(value, 5) if isinstance(value, float) else value) for key, value in run.items()
                        if key != "predictions_sha256"} for run in calibration.short_runs],
        "baselines": {name: round(ratio, 5) for name, ratio in calibration.baselines.items()},
        "rule": (f"reference passes the full tier in >= {REQUIRED_PASS_RATE:.0%} of seeds; every baseline fails every "
                 f"tier; at least {REQUIRED_PASS_RATE:.0%} of all runs that meet the validation bar earn full credit; "
                 f"a test ratio below {1 - IMPLAUSIBLE_MARGIN:g} x the best reference seed is flagged"),
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def set_notebook_bar(root: Path, bar: float) -> bool:
    """Write the validation bar into the instructor notebook's `VALIDATION_BAR = ...` line; True if it changed."""
    import nbformat

    path = source_notebook(root)
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type == "code" and BAR_LINE.search(cell.source):
            updated = BAR_LINE.sub(f"VALIDATION_BAR = {bar:.4f}", cell.source)
            changed, cell.source = changed or updated != cell.source, updated
    if changed:
        nbformat.write(notebook, path)
    return changed


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
        f"| tier | MAE / persistence at most | fraction of the {POINTS_OF_CHECK['forecast']:g} points |", "|---|---|---|",
        *(f"| {i + 1} | {t['max_ratio']:.4f} | {t['fraction']:g} |" for i, t in enumerate(calibration.tiers)),
        "", f"Reference over {len(ratios)} seeds: min {min(ratios):.4f}, median {statistics.median(ratios):.4f}, "
        f"max {max(ratios):.4f} (MAE {min(r['mae'] for r in calibration.reference):.3f}..{max(r['mae'] for r in calibration.reference):.3f} degC).",
        "", "| baseline | MAE / persistence |", "|---|---|",
        *(f"| {name} | {ratio:.4f} |" for name, ratio in sorted(calibration.baselines.items(), key=lambda kv: kv[1])),
        "", "## Validation bar (shown to students in the notebook)", "",
        f"The reference was also trained for {', '.join(map(str, SHORT_BUDGETS))} epochs "
        f"({len(calibration.short_runs)} runs). Bar: validation MAE at most **{calibration.validation_bar}** x the "
        "persistence MAE on the validation period: at least 99% of all runs that meet it earn full credit on the test period.",
        "", "| budget | seed | validation ratio | test ratio | full credit |", "|---|---|---|---|---|",
        *(f"| {run['epochs'] or 'notebook'} | {run['seed']} | {run['val_ratio']:.4f} | {run['ratio']:.4f} | "
          f"{'yes' if run['ratio'] <= calibration.tiers[0]['max_ratio'] else 'no'} |"
          for run in sorted(calibration.reference + calibration.short_runs, key=lambda r: r["val_ratio"])),
        "", "## Plausibility", "",
        f"A test ratio below **{calibration.implausible_below}** ({1 - IMPLAUSIBLE_MARGIN:g} x the best reference seed, "
        f"{min(ratios):.4f}) is flagged for review: far better than anything the reference reached.",
    ]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
