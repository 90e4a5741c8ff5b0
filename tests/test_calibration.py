"""Threshold calibration: determinism, the acceptance rules, fingerprints, and their use in grading."""

import json
from pathlib import Path

import nbformat
import pytest

from grader_tests.thresholds import load_thresholds
from jenalab.calibration import (calibrate, choose_tiers, choose_validation_bar, fingerprint, fingerprint_mismatch,
                                 reference_run, set_notebook_bar, write_report, write_thresholds)
from jenalab.corpus import scratch_course
from jenalab.course import CourseError, solved_cells, source_notebook
from jenalab.grading import threshold_warning

COURSE = Path(__file__).resolve().parents[1]


def test_reference_training_is_bit_identical_for_a_seed(windows):
    first, second = reference_run(3, COURSE, epochs=1), reference_run(3, COURSE, epochs=1)
    assert first["predictions_sha256"] == second["predictions_sha256"]
    assert reference_run(4, COURSE, epochs=1)["predictions_sha256"] != first["predictions_sha256"]


def test_committed_thresholds_come_from_a_full_calibration_on_this_data(windows):
    document = load_thresholds(COURSE)
    assert fingerprint_mismatch(document["fingerprint"], windows) is None
    assert document["reference"]["seeds"] >= 20
    full = document["tiers"][0]["max_ratio"]
    assert max(document["reference"]["ratios"]) <= full, "every calibrated seed earns full credit"
    assert all(ratio > document["tiers"][-1]["max_ratio"] for ratio in document["baselines"].values())
    assert document["implausible_below"] < document["reference"]["min"]
    bar = document["validation_bar"]["max_ratio"]
    assert max(document["reference"]["validation_ratios"]) <= bar, "the reference meets the bar it is shown"
    meeting = [r for r in document["short_runs"] if r["val_ratio"] <= bar]
    assert all(r["ratio"] <= full for r in meeting), "a run that meets the bar earns full credit"
    assert any(r["val_ratio"] > bar for r in document["short_runs"]), "the short runs must test the bar"
    line = f"VALIDATION_BAR = {bar:.4f}"
    assert line in solved_cells(COURSE)["forecast_helper"], "the notebook states the calibrated bar"


@pytest.fixture(scope="module")
def quick_calibration():
    """A reduced calibration (3 seeds, the notebook's full training budget, no short runs) on the offline data."""
    return calibrate(COURSE, seeds=3, processes=2, bar_seeds=0, log=print)


def test_reduced_calibration_passes_the_acceptance_rule(quick_calibration, tmp_path):
    assert quick_calibration.accepted, quick_calibration.problems
    tiers = [t["max_ratio"] for t in quick_calibration.tiers]
    assert tiers == sorted(tiers) and [t["fraction"] for t in quick_calibration.tiers] == [1.0, 0.5, 0.2]
    assert all(r["ratio"] <= tiers[0] for r in quick_calibration.reference)
    assert min(quick_calibration.baselines.values()) > tiers[-1]
    assert quick_calibration.implausible_below < min(r["ratio"] for r in quick_calibration.reference)
    write_thresholds(quick_calibration, tmp_path / "thresholds.json")
    report = write_report(quick_calibration, tmp_path / "report")
    assert "Accepted" in report.read_text() and (tmp_path / "report" / "mae.png").stat().st_size > 10_000
    written = json.loads((tmp_path / "thresholds.json").read_text())
    assert written["fingerprint"]["sha256"] == quick_calibration.fingerprint["sha256"]
    assert written["validation_bar"]["max_ratio"] == quick_calibration.validation_bar


def test_a_too_small_training_budget_is_rejected():
    calibration = calibrate(COURSE, seeds=2, processes=2, epochs=1, bar_seeds=0, log=print)
    assert not calibration.accepted
    assert any("ridge" in problem for problem in calibration.problems)


def test_choose_tiers_applies_the_rule():
    tiers, problems = choose_tiers([0.50, 0.51, 0.52], {"ridge": 0.62, "persistence": 1.0})
    assert not problems and tiers[0]["max_ratio"] == pytest.approx(0.57)  # halfway from 0.52 to 0.62
    assert tiers[-1]["max_ratio"] < 0.62
    tiers, _ = choose_tiers([0.50, 0.58], {"ridge": 0.61})
    assert tiers[0]["max_ratio"] == pytest.approx(0.60)  # at least the margin above the worst seed
    _, problems = choose_tiers([0.50, 0.62], {"ridge": 0.61})
    assert any("does not beat the best baseline" in p for p in problems)


def run(val, test, epochs=None):
    return {"val_ratio": val, "ratio": test, "epochs": epochs}


def test_the_validation_bar_stops_below_the_first_run_that_misses_full_credit():
    runs = [run(0.50, 0.50), run(0.51, 0.52), run(0.55, 0.54, 2), run(0.60, 0.58, 1), run(0.62, 0.61, 1)]
    bar, problems = choose_validation_bar(runs, full_tier=0.56)
    assert bar == 0.55 and not problems
    _, problems = choose_validation_bar([run(0.50, 0.50), run(0.58, 0.52), run(0.56, 0.57, 1)], full_tier=0.56)
    assert any("meets the validation bar" in p for p in problems)  # the bar would fail the reference itself


def test_thresholds_from_other_data_warn_loudly_or_stop_grading(windows):
    document = dict(load_thresholds(COURSE), fingerprint=dict(fingerprint(windows), sha256="0" * 64,
                                                               features=["p (mbar)"]))
    said = []
    problem = threshold_warning(document, strict=False, log=said.append)
    assert "calibrated on other data (different sha256, features" in problem
    assert said and said[0].startswith("WARNING")
    with pytest.raises(CourseError, match="Not grading: thresholds were calibrated on other data"):
        threshold_warning(document, strict=True, log=said.append)


def test_calibration_writes_the_bar_into_the_notebook(tmp_path):
    root = scratch_course(COURSE, tmp_path / "course")
    assert set_notebook_bar(root, 0.6123)
    assert "VALIDATION_BAR = 0.6123" in solved_cells(root)["forecast_helper"]
    assert not set_notebook_bar(root, 0.6123), "an unchanged bar leaves the notebook alone"
    nbformat.validate(nbformat.read(source_notebook(root), as_version=4))
