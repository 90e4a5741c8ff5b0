"""Benchmark: load, validate, engineer features and window the Jena data, end to end.

Times the library (``build_windows(read_records(path))``) against a straightforward
reference written in plain pandas with a per-window Python loop, on two files:

* the real hourly offline copy (``$JENA_DATA_MIRROR/jena_climate_2009_2016_hourly_6vars.csv.gz``);
* a synthetic file of the official size and format (420,551 10-minute rows, 15 columns),
  written once per run. Its values are plausible but made up: it is for timing only.

The reference must produce exactly the library's windows (same counts, np.allclose arrays),
so that the speed-up compares two correct implementations. The exit status is 1 only
when they disagree; timings never fail the run.

    .venv/bin/python bench/bench_pipeline.py [--repeat 5] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jena_weather.data import (
    DATE_COLUMN,
    ENV_DIR,
    ENV_MIRROR,
    FIRST_DAY,
    HOURLY_MIRROR_NAME,
    LAST_DAY,
    OFFICIAL_COLUMNS,
    OFFICIAL_NAME,
    OFFICIAL_ROWS,
    TARGET_COLUMN,
    VALUE_RANGES,
    WIND_ERROR_CODE,
    WIND_SPEED_COLUMNS,
    cache_dir,
    read_records,
)
from jena_weather.pipeline import SPLITS, build_windows

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "jena_data"  # same default as the Makefile
OUT_DIR = REPO / "bench" / "out"  # gitignored
SEED = 2009
TARGET_SECONDS = 2.0  # official-size file, end to end
TARGET_SPEEDUP = 20.0  # reference time / library time

# Window geometry of the lab, restated here so the reference does not borrow the library's code.
INPUT_STEPS, HORIZON = 12, 2
SPAN = INPUT_STEPS + HORIZON  # hourly rows from the first input to the target
ONE_HOUR = np.timedelta64(1, "h")
# Both implementations report these two stages, cut at the same point.
STAGES = ("read+validate", "hourly+features+windows")


# --------------------------------------------------------------------------- synthetic file


def synthetic_timestamps() -> np.ndarray:
    """The official 10-minute grid, 01.01.2009 00:10 .. 01.01.2017 00:00, with two gaps.

    The full grid has 420,768 stamps; two gaps remove 217 of them, leaving the official
    row count: 17 stamps on 21.02.2010 (16:10..18:50) and 200 stamps from 20.10.2012 21:30
    to 22.10.2012 06:40. Windows that span them must be dropped.
    """
    grid = np.arange(
        np.datetime64("2009-01-01T00:10:00"), np.datetime64("2017-01-01T00:10:00"), np.timedelta64(10, "m")
    ).astype("datetime64[s]")
    keep = np.ones(len(grid), dtype=bool)
    keep[60_000:60_017] = False
    keep[200_000:200_200] = False
    stamps = grid[keep]
    assert len(stamps) == OFFICIAL_ROWS
    return stamps


def format_official_dates(stamps: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS`` -> ``DD.MM.YYYY HH:MM:SS`` by moving bytes, without a Python loop."""
    iso = np.datetime_as_string(stamps, unit="s").astype("S19").view(np.uint8).reshape(-1, 19)
    out = np.empty_like(iso)
    out[:, 0:2], out[:, 3:5], out[:, 6:10], out[:, 11:19] = iso[:, 8:10], iso[:, 5:7], iso[:, 0:4], iso[:, 11:19]
    out[:, [2, 5]], out[:, 10] = ord("."), ord(" ")
    return out.reshape(-1).view("S19").astype(str)


def smooth_noise(rng: np.random.Generator, hours: np.ndarray, scale: float, every_hours: float) -> np.ndarray:
    """Noise that varies over ``every_hours`` (weather systems), not from row to row."""
    knots = np.arange(hours[0], hours[-1] + 2 * every_hours, every_hours)
    return np.interp(hours, knots, rng.normal(0.0, scale, len(knots)))


def synthetic_measurements(stamps: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible, mutually consistent values for the 14 measured columns (textbook formulas)."""
    hours = (stamps - stamps[0]) / ONE_HOUR
    day = 2 * np.pi * (hours % 24) / 24
    year = 2 * np.pi * (hours % 8765.82) / 8765.82
    noise = rng.normal(0.0, 0.3, len(hours))

    temp = 9.4 - 9.0 * np.cos(year - 0.35) - 3.5 * np.cos(day - 0.8) + smooth_noise(rng, hours, 4.0, 72) + noise
    temp = np.clip(temp, -23.0, 36.0)
    pressure = np.clip(989.0 + smooth_noise(rng, hours, 8.0, 48) + 0.2 * noise, 915.0, 1015.0)
    rh = np.clip(78.0 + 12.0 * np.cos(day - 0.8) + smooth_noise(rng, hours, 10.0, 24), 12.0, 100.0)
    vp_max = 6.112 * np.exp(17.62 * temp / (243.12 + temp))  # Magnus formula, mbar
    vp_act = vp_max * rh / 100
    log_ratio = np.log(vp_act / 6.112)
    speed = np.minimum(rng.gamma(2.0, 1.1, len(hours)), 20.0)
    columns = {
        "p (mbar)": pressure,
        "T (degC)": temp,
        "Tpot (K)": (temp + 273.15) * (1000.0 / pressure) ** 0.286,
        "Tdew (degC)": 243.12 * log_ratio / (17.62 - log_ratio),
        "rh (%)": rh,
        "VPmax (mbar)": vp_max,
        "VPact (mbar)": vp_act,
        "VPdef (mbar)": vp_max - vp_act,
        "sh (g/kg)": 622.0 * vp_act / (pressure - 0.378 * vp_act),
        "H2OC (mmol/mol)": 1000.0 * vp_act / pressure,
        "rho (g/m**3)": 1e5 * pressure / (287.05 * (temp + 273.15)),
        "wv (m/s)": speed,
        "max. wv (m/s)": speed * rng.uniform(1.2, 2.0, len(hours)),
        "wd (deg)": rng.uniform(0.0, 360.0, len(hours)),
    }
    columns = {name: np.round(values, 2) for name, values in columns.items()}
    for name in WIND_SPEED_COLUMNS:  # a few sensor error codes, as in the official file
        columns[name][rng.choice(len(hours), 5, replace=False)] = WIND_ERROR_CODE
    return columns


def write_synthetic_file(directory: Path, seed: int = SEED) -> Path:
    """Write the official-size synthetic CSV (official name, header and date format)."""
    rng = np.random.default_rng(seed)
    stamps = synthetic_timestamps()
    frame = pd.DataFrame({DATE_COLUMN: format_official_dates(stamps), **synthetic_measurements(stamps, rng)})
    check_plausible(frame)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / OFFICIAL_NAME
    frame[OFFICIAL_COLUMNS].to_csv(path, index=False)
    return path


def check_plausible(frame: pd.DataFrame) -> None:
    """Fail early if the generator ever drifts outside the validator's ranges."""
    for name, (low, high) in VALUE_RANGES.items():
        values = frame[name].where(frame[name] != WIND_ERROR_CODE) if name in WIND_SPEED_COLUMNS else frame[name]
        if not values.dropna().between(low, high).all():
            raise AssertionError(f"synthetic column {name!r} leaves {low}..{high}")


# --------------------------------------------------------------------------- library


def run_library(path: Path) -> tuple[dict, dict[str, float]]:
    """The library end to end; returns its windows as arrays and the seconds of each stage."""
    start = time.perf_counter()
    records = read_records(path)
    loaded = time.perf_counter()
    windows = build_windows(records, periods=SPLITS)
    done = time.perf_counter()
    arrays = {
        "features": windows.feature_names,
        **{name: (split.x.numpy(), split.y.numpy().reshape(-1)) for name, split in windows.splits.items()},
    }
    return arrays, {STAGES[0]: loaded - start, STAGES[1]: done - loaded}


# --------------------------------------------------------------------------- reference


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def reference_records(path: Path) -> pd.DataFrame:
    """Read, validate and clean with plain pandas."""
    frame = pd.read_csv(path)
    frame[DATE_COLUMN] = pd.to_datetime(frame[DATE_COLUMN], format="%d.%m.%Y %H:%M:%S")
    require(frame[DATE_COLUMN].between(FIRST_DAY, LAST_DAY).all(), "date outside the record")
    for column in frame.columns.drop(DATE_COLUMN):
        if column in WIND_SPEED_COLUMNS:
            frame[column] = frame[column].replace(WIND_ERROR_CODE, 0.0)
        low, high = VALUE_RANGES[column]
        require(frame[column].between(low, high).all(), f"{column}: missing or impossible value")
    return frame.sort_values(DATE_COLUMN, kind="stable").drop_duplicates(DATE_COLUMN).reset_index(drop=True)


def reference_hourly(frame: pd.DataFrame) -> pd.DataFrame:
    """Every 6th record of 10-minute data (as the lab does), hourly data as is."""
    if frame[DATE_COLUMN].diff().median() == pd.Timedelta(minutes=10):
        return frame.iloc[::6].reset_index(drop=True)
    return frame


def reference_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Wind vectors and day/year sin/cos, in the lab's column order."""
    features = frame.drop(columns=[DATE_COLUMN])
    if "wd (deg)" in features:
        direction = np.deg2rad(features.pop("wd (deg)"))
        for speed, x_name, y_name in (("wv (m/s)", "Wx", "Wy"), ("max. wv (m/s)", "max Wx", "max Wy")):
            if speed in features:
                velocity = features.pop(speed)
                features[x_name] = velocity * np.cos(direction)
                features[y_name] = velocity * np.sin(direction)
    seconds = (frame[DATE_COLUMN] - pd.Timestamp("1970-01-01")).dt.total_seconds()
    for name, period in (("Day", 24 * 3600), ("Year", 365.2425 * 24 * 3600)):
        features[f"{name} sin"] = np.sin(seconds * (2 * np.pi / period))
        features[f"{name} cos"] = np.cos(seconds * (2 * np.pi / period))
    return features.astype(np.float32)


def reference_windows_of(values: np.ndarray, target: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One window at a time: keep it if its 14 rows are exactly 1 h apart."""
    inputs, targets = [], []
    for first in range(len(values) - SPAN + 1):
        last = first + SPAN - 1  # the target row, 2 h after the last input row
        if (np.diff(times[first : last + 1]) == ONE_HOUR).all():
            inputs.append(values[first : first + INPUT_STEPS])
            targets.append(target[last])
    x = np.stack(inputs) if inputs else np.zeros((0, INPUT_STEPS, values.shape[1]), np.float32)
    return x, np.asarray(targets, dtype=np.float32)


def run_reference(path: Path) -> tuple[dict, dict[str, float]]:
    """The straightforward version of the whole pipeline, timed at the library's stage cut."""
    start = time.perf_counter()
    frame = reference_records(path)
    loaded = time.perf_counter()
    frame = reference_hourly(frame)
    features = reference_features(frame)
    n_rows = len(features)
    train_end, val_end = int(n_rows * 0.7), int(n_rows * 0.9)
    train = features.iloc[:train_end].astype(np.float64)
    normalised = ((features - train.mean()) / train.std(ddof=0).replace(0.0, 1.0)).astype(np.float32)
    values, target = normalised.to_numpy(), normalised[TARGET_COLUMN].to_numpy()
    times = frame[DATE_COLUMN].to_numpy()
    arrays = {"features": list(features.columns)}
    splits = {"train": slice(0, train_end), "val": slice(train_end, val_end), "test": slice(val_end, n_rows)}
    for name, rows in splits.items():
        arrays[name] = reference_windows_of(values[rows], target[rows], times[rows])
    return arrays, {STAGES[0]: loaded - start, STAGES[1]: time.perf_counter() - loaded}


# --------------------------------------------------------------------------- comparison and timing


def mismatches(library: dict, reference: dict) -> list[str]:
    """Everything on which the two implementations disagree (empty when they agree)."""
    if library["features"] != reference["features"]:
        return [f"features differ: {library['features']} vs {reference['features']}"]
    problems = []
    for split in ("train", "val", "test"):
        (lib_x, lib_y), (ref_x, ref_y) = library[split], reference[split]
        if lib_x.shape != ref_x.shape or lib_y.shape != ref_y.shape:
            problems.append(f"{split}: library {lib_x.shape}/{lib_y.shape} vs reference {ref_x.shape}/{ref_y.shape}")
        elif not (np.allclose(lib_x, ref_x, rtol=1e-5, atol=1e-6) and np.allclose(lib_y, ref_y, rtol=1e-5, atol=1e-6)):
            problems.append(f"{split}: same shapes but different values")
    return problems


@dataclass
class Result:
    label: str
    path: Path
    library: list[dict[str, float]] = field(default_factory=list)  # seconds per stage, one dict per run (cold cache)
    cached: list[dict[str, float]] = field(default_factory=list)  # the same with the validated records cached
    reference: list[dict[str, float]] = field(default_factory=list)
    windows: int = 0
    problems: list[str] = field(default_factory=list)

    def median(self, implementation: str, stage: str | None = None) -> float:
        """Median over runs of one stage, or of the end-to-end time (sum of the stages)."""
        runs = getattr(self, implementation)
        return statistics.median(run[stage] if stage else sum(run.values()) for run in runs)

    def speedup(self, stage: str | None = None, implementation: str = "library") -> float:
        return self.median("reference", stage) / self.median(implementation, stage)


def benchmark(label: str, path: Path, repeat: int) -> Result:
    """Alternate library and reference runs so that both see the same machine load."""
    result = Result(label, path)
    for _ in range(repeat):
        shutil.rmtree(cache_dir(), ignore_errors=True)  # cold: parse and validate the file
        library, stages = run_library(path)
        result.library.append(stages)
        result.cached.append(run_library(path)[1])  # warm: the records the cold run cached
        reference, stages = run_reference(path)
        result.reference.append(stages)
    # Both are deterministic: comparing the outputs of the last run suffices.
    result.problems = mismatches(library, reference)
    result.windows = sum(len(library[split][1]) for split in ("train", "val", "test"))
    return result


# --------------------------------------------------------------------------- report


def print_table(results: list[Result], repeat: int) -> None:
    print(f"\nEnd to end (load, validate, features, windows): medians of {repeat} runs, seconds")
    print(f"{'file':<42} {'windows':>8} {'cold':>7} {'cached':>7} {'reference':>10} {'speed-up cold':>14} "
          f"{'cached':>7}  check")
    for r in results:
        check = "same windows" if not r.problems else "MISMATCH"
        print(
            f"{r.label:<42} {r.windows:>8,} {r.median('library'):>7.3f} {r.median('cached'):>7.3f} "
            f"{r.median('reference'):>10.3f} {r.speedup():>13.1f}x {r.speedup(None, 'cached'):>6.1f}x  {check}"
        )


def print_breakdown(result: Result) -> None:
    print(f"\nBreakdown, {result.label}: medians, seconds")
    print(f"  {'stage':<26} {'library':>8} {'reference':>10} {'speed-up':>9}")
    for stage in (*STAGES, None):
        print(
            f"  {stage or 'end to end':<26} {result.median('library', stage):>8.3f} "
            f"{result.median('reference', stage):>10.3f} {result.speedup(stage):>8.1f}x"
        )


def print_targets(official: Result) -> None:
    seconds = official.median("library")
    print("\nTargets on the official-size file (informative; they never fail the run):")
    print(f"  end to end < {TARGET_SECONDS:g} s (cold):  {seconds:.3f} s -> {'met' if seconds < TARGET_SECONDS else 'MISSED'}")
    for implementation in ("library", "cached"):
        speedup = official.speedup(None, implementation)
        print(f"  speed-up >= {TARGET_SPEEDUP:g}x ({'cold' if implementation == 'library' else 'cached'}):   "
              f"{speedup:.1f}x -> {'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")


def print_profile(path: Path, lines: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(run_library, path)
    print(f"\ncProfile of the library on {path.name} (cumulative time, top {lines})")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(lines)


# --------------------------------------------------------------------------- main


def hourly_copy() -> Path | None:
    path = Path(os.environ.get(ENV_MIRROR) or DEFAULT_MIRROR) / HOURLY_MIRROR_NAME
    return path if path.is_file() else None


def run(args: argparse.Namespace, directory: Path) -> int:
    files = []
    if (hourly := hourly_copy()) is not None:
        files.append(("hourly offline copy (real, 6 vars)", hourly))
    else:
        print(f"Skipping the real hourly copy: set ${ENV_MIRROR} to the directory holding {HOURLY_MIRROR_NAME}.")
    start = time.perf_counter()
    official = write_synthetic_file(directory)
    print(f"Wrote the synthetic official-size file (timing only) in {time.perf_counter() - start:.1f} s: {official}")
    files.append(("official-size synthetic (10 min, 15 col)", official))

    results = [benchmark(label, path, args.repeat) for label, path in files]
    print_table(results, args.repeat)
    for result in results:
        print_breakdown(result)
    print_targets(results[-1])
    if args.profile:
        print_profile(official)
    failed = [r for r in results if r.problems]
    for r in failed:
        print(f"\nMISMATCH on {r.label}: " + "; ".join(r.problems), file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per file and implementation (default 5)")
    parser.add_argument("--keep", action="store_true", help=f"write the synthetic file to {OUT_DIR} and keep it")
    parser.add_argument("--profile", action="store_true", help="also cProfile the library on the synthetic file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="jena_bench_") as tmp:
        os.environ[ENV_DIR] = str(Path(tmp) / "data_dir")  # a private records cache
        return run(args, OUT_DIR if args.keep else Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
