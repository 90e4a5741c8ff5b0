"""From validated Jena records to the lab's tensors.

Hourly series -> features -> chronological 70/20/10 split -> normalisation with training
statistics -> windows of 12 hourly rows with the temperature 2 h after the last row as
target. Letters in shapes: N windows, T time steps (12), F features.

The lab works with the training and validation periods; the last 10% of the record, the test
period, is kept for grading and is not part of the data a notebook builds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from jena_weather.data import DATE_COLUMN, TARGET_COLUMN, JenaDataError, JenaRecords, load_jena

INPUT_STEPS = 12  # hourly rows fed to the model
HORIZON = 2  # hours between the last input row and the target
SPLIT_PERCENT = (70, 20, 10)  # train, validation, test, in time order
SPLITS = ("train", "val", "test")
LAB_PERIODS = ("train", "val")  # what a notebook works with; "test" is the grader's
HOUR = np.timedelta64(3600, "s")
DAY_SECONDS = 24 * 60 * 60
YEAR_SECONDS = 365.2425 * DAY_SECONDS

_WIND = (("wv (m/s)", "Wx", "Wy"), ("max. wv (m/s)", "max Wx", "max Wy"))


def hourly(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one record per hour: every 6th record of 10-minute data, hourly data as is.

    Records must be sorted with unique timestamps (``load_jena`` guarantees it). Taking
    every 6th record keeps the official minute stamps; after a gap they drift (:10, :30),
    which is why windows test the spacing between rows instead of minute values.
    """
    step = np.median(np.diff(frame[DATE_COLUMN].to_numpy()[: 1000])) if len(frame) > 1 else HOUR
    if step == np.timedelta64(600, "s"):
        return frame.iloc[::6].reset_index(drop=True)
    if step == HOUR:
        return frame
    raise ValueError(f"Records are spaced by {pd.Timedelta(step)}; expected 10 minutes or 1 hour.")


def engineer_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Model inputs from measured columns (TF time-series tutorial recipe).

    Wind speed and direction become vectors (Wx, Wy, max Wx, max Wy) when the direction
    is known; otherwise the speed stays a feature. Day and year periodicity are added as
    sin/cos signals. The number of features follows from the columns present.
    """
    features = frame.drop(columns=[DATE_COLUMN])
    if "wd (deg)" in features:
        direction = np.deg2rad(features.pop("wd (deg)").to_numpy())
        for speed, x_name, y_name in _WIND:
            if speed in features:
                velocity = features.pop(speed).to_numpy()
                features[x_name] = velocity * np.cos(direction)
                features[y_name] = velocity * np.sin(direction)
    # pandas 3 stores datetimes at s/us/ns resolution: derive seconds explicitly.
    seconds = (frame[DATE_COLUMN] - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    for name, period in (("Day", DAY_SECONDS), ("Year", YEAR_SECONDS)):
        features[f"{name} sin"] = np.sin(seconds * (2 * np.pi / period))
        features[f"{name} cos"] = np.cos(seconds * (2 * np.pi / period))
    return features.astype(np.float32)


def split_bounds(n_rows: int) -> dict[str, slice]:
    """Row ranges of the chronological 70/20/10 split."""
    train_end = n_rows * SPLIT_PERCENT[0] // 100  # integer arithmetic: 0.7 + 0.2 != 0.9 in floats
    val_end = n_rows * (SPLIT_PERCENT[0] + SPLIT_PERCENT[1]) // 100
    return {"train": slice(0, train_end), "val": slice(train_end, val_end), "test": slice(val_end, n_rows)}


def period_bounds(records: JenaRecords, n_rows: int) -> dict[str, slice]:
    """Row ranges of the periods in these hourly rows: the 70/20/10 split of a whole record, or
    the periods an extract says it holds (in time order)."""
    if records.periods is None:
        return split_bounds(n_rows)
    bounds, start = {}, 0
    for name in SPLITS:
        if name in records.periods:
            bounds[name] = slice(start, start + records.periods[name])
            start = bounds[name].stop
    if start != n_rows:
        raise JenaDataError(f"{records.path}: the extract's periods cover {start} hourly rows, the file has {n_rows}.")
    return bounds


def window_starts(times: np.ndarray) -> np.ndarray:
    """Start rows of every window whose 12 inputs and target are evenly spaced by 1 h.

    A window covers rows i .. i+13 (13 hours); one irregular step anywhere drops it.
    """
    span = INPUT_STEPS + HORIZON  # rows from the first input to the target
    if len(times) < span:
        return np.zeros(0, dtype=np.int64)
    bad_step = (np.diff(times) != HOUR).astype(np.int64)
    bad_before = np.concatenate([[0], np.cumsum(bad_step)])  # bad steps before each row
    starts = np.arange(len(times) - span + 1)
    return starts[bad_before[starts + span - 1] == bad_before[starts]]


@dataclass
class Split:
    """Windows of one split, normalised. x: (N, T, F) float32, y: (N, 1) float32."""

    x: torch.Tensor
    y: torch.Tensor
    target_time: np.ndarray  # (N,) timestamps of the targets

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class JenaWindows:
    """Everything the lab, the grader and calibration use, built once from one data file."""

    feature_names: list[str]
    mean: np.ndarray  # (F,) training-split means
    std: np.ndarray  # (F,) training-split standard deviations
    splits: dict[str, Split]
    row_counts: dict[str, int]  # hourly rows per split (before windowing)
    source: str
    sha256: str
    target_index: int = field(init=False)

    def __post_init__(self) -> None:
        self.target_index = self.feature_names.index(TARGET_COLUMN)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __getitem__(self, split: str) -> Split:
        if split == "test" and split not in self.splits:
            raise KeyError("The test period is kept for grading: train on 'train' and tune on 'val'.")
        if split not in self.splits:
            raise KeyError(f"Unknown split {split!r}; choose one of {tuple(self.splits)}.")
        return self.splits[split]

    def to_degc(self, normalised) -> np.ndarray:
        """Turn normalised temperatures (model outputs or targets) back into degC."""
        if isinstance(normalised, torch.Tensor):
            normalised = normalised.detach().cpu().numpy()
        values = np.asarray(normalised, dtype=np.float64).reshape(-1)
        return values * self.std[self.target_index] + self.mean[self.target_index]

    def loader(self, split: str, batch_size: int = 256, shuffle: bool | None = None, seed: int = 0) -> DataLoader:
        """DataLoader of (x, y) batches; shuffled by default for the training split.

        Batches are sliced straight from the tensors (one index per batch, not per sample).
        """
        data = self[split]
        shuffle = split == "train" if shuffle is None else shuffle
        dataset = TensorDataset(data.x, data.y)
        order = (
            RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
            if shuffle
            else SequentialSampler(dataset)
        )
        return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)

    def summary(self) -> str:
        lines = [f"Data: {self.source} (sha256 {self.sha256[:12]}...)", f"Features ({self.n_features}): {', '.join(self.feature_names)}"]
        for name in self.splits:
            split = self[name]
            period = (
                f"  (targets {pd.Timestamp(split.target_time[0]):%Y-%m-%d} .. {pd.Timestamp(split.target_time[-1]):%Y-%m-%d})"
                if len(split)
                else ""
            )
            lines.append(f"  {name:<5} {self.row_counts[name]:>6} hourly rows -> {len(split):>6} windows{period}")
        if "test" not in self.splits:
            held = self.row_counts.get("test")
            lines.append(f"  test  {held:>6} hourly rows, kept for grading" if held else "  test  kept for grading (not in this file)")
        return "\n".join(lines)


def build_windows(records: JenaRecords | None = None, path: str | os.PathLike | None = None,
                  periods: tuple[str, ...] = LAB_PERIODS) -> JenaWindows:
    """Build the windows of the given periods from records (or from the data file ``load_jena`` finds).

    Normalisation always uses the training period's statistics. By default only the training and
    validation periods are built: the test period is the grader's.
    """
    records = records or load_jena(path)
    rows = hourly(records.frame)
    features = engineer_features(rows)
    values = features.to_numpy(dtype=np.float32)  # (rows, F)
    times = rows[DATE_COLUMN].to_numpy()
    bounds = period_bounds(records, len(rows))
    missing = [name for name in periods if name not in bounds]
    if missing:
        raise JenaDataError(f"{records.path} holds no {' or '.join(missing)} period (it holds {', '.join(bounds)}).")
    short = [name for name in (*periods, "train") if bounds[name].stop - bounds[name].start < INPUT_STEPS + HORIZON]
    if short:
        raise JenaDataError(f"{records.path}: {len(rows)} hourly rows are too few (the {short[0]} period gets "
                            f"{bounds[short[0]].stop - bounds[short[0]].start}); the lab needs at least "
                            f"{min_hourly_rows()} hourly rows, so that every period holds a window of "
                            f"{INPUT_STEPS + HORIZON} hours.")
    train = values[bounds["train"]]
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # a constant feature (e.g. a sensor stuck at 0) stays 0, not NaN
    normalised = ((values - mean) / std).astype(np.float32)
    target = normalised[:, list(features.columns).index(TARGET_COLUMN)]

    splits = {}
    for name in periods:
        rows_slice = bounds[name]
        block, block_times, block_target = normalised[rows_slice], times[rows_slice], target[rows_slice]
        starts = window_starts(block_times)
        x = block[starts[:, None] + np.arange(INPUT_STEPS)]  # (N, T, F), one vectorised gather
        target_rows = starts + INPUT_STEPS - 1 + HORIZON
        splits[name] = Split(
            x=torch.from_numpy(x),
            y=torch.from_numpy(np.ascontiguousarray(block_target[target_rows]).reshape(-1, 1)),
            target_time=block_times[target_rows],
        )
    return JenaWindows(
        feature_names=list(features.columns),
        mean=mean,
        std=std,
        splits=splits,
        row_counts={name: s.stop - s.start for name, s in bounds.items()},
        source=str(records.path),
        sha256=records.sha256,
    )


def min_hourly_rows() -> int:
    """Fewest hourly rows whose 70/20/10 split leaves room for a window in every period."""
    span = INPUT_STEPS + HORIZON
    return next(n for n in range(span, 100 * span) if all(b.stop - b.start >= span for b in split_bounds(n).values()))
