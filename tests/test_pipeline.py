"""Hourly series, features, split, normalisation, windows, loaders and baselines on real data."""

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
import torch

from jena_weather.baselines import Ridge, baseline_errors, mae_degc, persistence
from jena_weather.data import DATE_COLUMN, JenaDataError, JenaRecords, read_records
from jena_weather.pipeline import (HORIZON, INPUT_STEPS, build_windows, engineer_features, hourly, min_hourly_rows,
                                   split_bounds)

HOUR = pd.Timedelta(hours=1)


# --- the official format: 10-minute records, 19 features --------------------------------


@pytest.fixture(scope="module")
def excerpt_rows(excerpt_file):
    return hourly(read_records(excerpt_file).frame)


def test_hourly_selection_keeps_every_sixth_record(excerpt_rows):
    assert len(excerpt_rows) == 26  # 154 ten-minute records
    assert excerpt_rows[DATE_COLUMN].iloc[0] == pd.Timestamp("2009-01-01 00:10:00")
    assert excerpt_rows[DATE_COLUMN].iloc[1] == pd.Timestamp("2009-01-01 01:10:00")
    assert (excerpt_rows[DATE_COLUMN].diff().dropna() == HOUR).all()


def test_official_format_gives_19_features_computed_by_hand(excerpt_file, excerpt_rows):
    features = engineer_features(excerpt_rows)
    assert features.shape == (26, 19)
    assert {"Wx", "Wy", "max Wx", "max Wy", "Day sin", "Day cos", "Year sin", "Year cos"} <= set(features)
    assert not {"wv (m/s)", "max. wv (m/s)", "wd (deg)"} & set(features)

    # Second hourly row of the official file: 01.01.2009 01:10:00, wv 0.18... read it from the file itself.
    raw = pd.read_csv(excerpt_file).iloc[6]
    assert raw["Date Time"] == "01.01.2009 01:10:00"
    row = features.iloc[1]
    direction = math.radians(raw["wd (deg)"])
    assert row["Wx"] == pytest.approx(raw["wv (m/s)"] * math.cos(direction), rel=1e-5)
    assert row["Wy"] == pytest.approx(raw["wv (m/s)"] * math.sin(direction), rel=1e-5)
    assert row["max Wx"] == pytest.approx(raw["max. wv (m/s)"] * math.cos(direction), rel=1e-5)
    assert row["max Wy"] == pytest.approx(raw["max. wv (m/s)"] * math.sin(direction), rel=1e-5)
    seconds = datetime(2009, 1, 1, 1, 10, tzinfo=timezone.utc).timestamp()
    assert row["Day sin"] == pytest.approx(math.sin(2 * math.pi * seconds / 86400), abs=1e-6)
    assert row["Day cos"] == pytest.approx(math.cos(2 * math.pi * seconds / 86400), abs=1e-6)
    year = 365.2425 * 86400
    assert row["Year sin"] == pytest.approx(math.sin(2 * math.pi * seconds / year), abs=1e-6)
    assert row["Year cos"] == pytest.approx(math.cos(2 * math.pi * seconds / year), abs=1e-6)
    assert row["T (degC)"] == pytest.approx(raw["T (degC)"])


def test_time_signals_do_not_depend_on_datetime_resolution(excerpt_rows):
    expected = engineer_features(excerpt_rows)
    for unit in ("s", "us", "ns"):
        rows = excerpt_rows.assign(**{DATE_COLUMN: excerpt_rows[DATE_COLUMN].astype(f"datetime64[{unit}]")})
        pd.testing.assert_frame_equal(engineer_features(rows), expected)


def test_hourly_rejects_other_spacings(excerpt_file):
    frame = read_records(excerpt_file).frame.iloc[::3]  # 30-minute records
    with pytest.raises(ValueError, match="spaced by 0 days 00:30:00; expected 10 minutes or 1 hour"):
        hourly(frame)


# --- the offline hourly copy: 10 features --------------------------------------------------


def test_offline_copy_gives_10_features(windows):
    assert windows.n_features == 10
    assert windows.feature_names[:6] == ["p (mbar)", "T (degC)", "Tdew (degC)", "rh (%)", "VPmax (mbar)", "wv (m/s)"]


def test_split_is_chronological_70_20_10(windows):
    assert windows.row_counts == {"train": 49_026, "val": 14_008, "test": 7_004}
    assert split_bounds(10) == {"train": slice(0, 7), "val": slice(7, 9), "test": slice(9, 10)}
    assert split_bounds(1000)["test"] == slice(900, 1000)  # no float rounding at the boundaries
    ends = [windows[s].target_time for s in ("train", "val", "test")]
    assert ends[0].max() < ends[1].min() and ends[1].max() < ends[2].min()


def test_normalisation_uses_training_rows_only(hourly_records, windows):
    frame = hourly_records.frame.copy()
    train_end = windows.row_counts["train"]
    rng = np.random.default_rng(0)
    later = frame.index >= train_end
    for column in ("T (degC)", "p (mbar)", "rh (%)"):
        frame.loc[later, column] = rng.permutation(frame.loc[later, column].to_numpy()) * 0.9
    changed = build_windows(JenaRecords(frame=frame, path=hourly_records.path, sha256="changed"))
    np.testing.assert_array_equal(changed.mean, windows.mean)
    np.testing.assert_array_equal(changed.std, windows.std)
    train = engineer_features(hourly(hourly_records.frame)).iloc[:train_end]
    np.testing.assert_allclose(windows.mean, train.mean().to_numpy(), rtol=1e-5, atol=1e-6)
    train_x = windows["train"].x
    assert abs(float(train_x[:, 0, :].mean())) < 0.05 and abs(float(train_x[:, 0, :].std()) - 1) < 0.05


def _normalised_table(hourly_records, windows):
    rows = hourly(hourly_records.frame)
    values = (engineer_features(rows).to_numpy() - windows.mean) / windows.std
    return rows[DATE_COLUMN].to_numpy(), values


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_every_window_is_13_consecutive_hours_with_the_right_rows(hourly_records, windows, split):
    times, table = _normalised_table(hourly_records, windows)
    data = windows[split]
    assert data.x.shape == (len(data), INPUT_STEPS, windows.n_features) and data.x.dtype == torch.float32
    assert data.y.shape == (len(data), 1) and data.y.dtype == torch.float32
    span = INPUT_STEPS - 1 + HORIZON  # 13 hours from the first input to the target
    for step in range(INPUT_STEPS):
        wanted = data.target_time - np.timedelta64(span - step, "h")
        rows = np.searchsorted(times, wanted)
        assert (times[rows] == wanted).all(), f"input step {step} is not exactly {span - step} h before the target"
        np.testing.assert_allclose(data.x[:, step].numpy(), table[rows], atol=1e-5)
    target_rows = np.searchsorted(times, data.target_time)
    np.testing.assert_allclose(data.y[:, 0].numpy(), table[target_rows, windows.target_index], atol=1e-5)


def test_windows_spanning_a_gap_are_dropped_and_all_others_kept(hourly_records, windows):
    times = hourly(hourly_records.frame)[DATE_COLUMN].to_numpy()
    bounds = split_bounds(len(times))
    expected = 0
    for rows in bounds.values():  # plain loop: a window is kept iff its 13 steps are all 1 h
        block = times[rows]
        for start in range(len(block) - INPUT_STEPS - HORIZON + 1):
            if block[start + INPUT_STEPS + HORIZON - 1] - block[start] == np.timedelta64(13, "h"):
                expected += 1
    assert sum(len(windows[s]) for s in bounds) == expected
    gap_start, gap_end = np.datetime64("2014-09-24T16:50"), np.datetime64("2014-09-25T09:40")
    assert np.searchsorted(times, gap_end) - np.searchsorted(times, gap_start) == 1, "the known 16 h 50 gap"
    for split in bounds:  # a target less than 13 h after the gap would need inputs from inside it
        target = windows[split].target_time
        assert not ((target >= gap_end) & (target < gap_end + np.timedelta64(13, "h"))).any()
    assert (windows["val"].target_time == gap_end + np.timedelta64(13, "h")).sum() == 1, "first window after the gap"


def test_to_degc_recovers_the_measured_temperature(hourly_records, windows):
    measured = hourly_records.frame.set_index(DATE_COLUMN)["T (degC)"]
    test = windows["test"]
    np.testing.assert_allclose(windows.to_degc(test.y), measured.loc[test.target_time].to_numpy(), atol=1e-3)


def test_loaders_batch_from_tensors_and_shuffle_training_only(windows):
    train = windows.loader("train", batch_size=64, seed=1)
    x, y = next(iter(train))
    assert x.shape == (64, INPUT_STEPS, windows.n_features) and y.shape == (64, 1)
    assert len(train) == math.ceil(len(windows["train"]) / 64)
    assert not torch.equal(next(iter(train))[1], windows["train"].y[:64]), "training batches are shuffled"
    torch.testing.assert_close(next(iter(windows.loader("train", 64, seed=1)))[1], y)  # seeded
    val_x, val_y = next(iter(windows.loader("val", batch_size=64)))
    torch.testing.assert_close(val_y, windows["val"].y[:64])
    assert sum(len(b[1]) for b in windows.loader("val", 1000)) == len(windows["val"])


# --- baselines -------------------------------------------------------------------------


def test_baselines_reproduce_the_reference_numbers(windows):
    errors = baseline_errors(windows)
    assert errors["persistence"]["test"] == pytest.approx(1.36, abs=0.01)
    assert errors["ridge"]["test"] == pytest.approx(0.82, abs=0.01)
    assert errors["ridge"]["val"] < errors["persistence"]["val"]


def test_persistence_is_the_last_measured_temperature(hourly_records, windows):
    measured = hourly_records.frame.set_index(DATE_COLUMN)["T (degC)"]
    test = windows["test"]
    now = test.target_time - np.timedelta64(HORIZON, "h")
    np.testing.assert_allclose(windows.to_degc(persistence(windows, "test")), measured.loc[now].to_numpy(), atol=1e-3)


def test_mae_degc_checks_the_prediction_count(windows):
    with pytest.raises(ValueError, match="Expected 6978 predictions for the test split, got 5"):
        mae_degc(windows, "test", np.zeros(5))
    assert Ridge(windows).predict("val").shape == (len(windows["val"]),)


def test_a_notebook_gets_the_training_and_validation_periods_only(hourly_records):
    lab = build_windows(hourly_records)
    assert list(lab.splits) == ["train", "val"]
    with pytest.raises(KeyError, match="kept for grading"):
        lab["test"]
    assert "7004 hourly rows, kept for grading" in lab.summary()


def test_an_extract_of_the_training_and_validation_periods_gives_the_same_windows(hourly_records, windows, tmp_path):
    from jena_weather.data import write_extract

    bounds = split_bounds(len(hourly_records.frame))
    path = write_extract(tmp_path / "extract.zip", hourly_records.frame.iloc[: bounds["val"].stop],
                         {"train": bounds["train"].stop, "val": bounds["val"].stop - bounds["val"].start})
    extract = read_records(path)
    assert extract.periods == {"train": 49026, "val": 14008} and len(extract.frame) == 63034
    lab = build_windows(extract)
    np.testing.assert_array_equal(lab.mean, windows.mean)
    np.testing.assert_array_equal(lab.std, windows.std)
    for split in ("train", "val"):
        assert torch.equal(lab[split].x, windows[split].x) and torch.equal(lab[split].y, windows[split].y)
    assert "test  kept for grading (not in this file)" in lab.summary()
    with pytest.raises(JenaDataError, match="holds no test period"):
        build_windows(extract, periods=("train", "val", "test"))


def test_too_few_rows_give_one_clear_error(excerpt_file):
    records = read_records(excerpt_file)  # 154 ten-minute rows: 26 hourly rows
    with pytest.raises(JenaDataError) as error:
        build_windows(records)
    message = str(error.value)
    assert "26 hourly rows are too few" in message and f"at least {min_hourly_rows()} hourly rows" in message
    assert "\n" not in message
