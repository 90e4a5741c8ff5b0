"""Threshold calibration: determinism, the acceptance rule, fingerprints, and their use in grading."""

import json

import pytest

from grader_tests import checks
from jenalab.calibration import (
    calibrate,
    choose_tiers,
    fingerprint,
    fingerprint_mismatch,
    reference_run,
    write_report,
    write_thresholds,
)
from jenalab.course import NbgraderError
from jenalab.grading import threshold_warning


def test_reference_training_is_bit_identical_for_a_seed(windows):
    first, second = reference_run(seed=3, epochs=1), reference_run(seed=3, epochs=1)
    assert first["predictions_sha256"] == second["predictions_sha256"]
    assert reference_run(seed=4, epochs=1)["predictions_sha256"] != first["predictions_sha256"]


def test_committed_thresholds_come_from_a_full_calibration_on_this_data(windows):
    document = json.loads(checks.THRESHOLDS_FILE.read_text())
    assert fingerprint_mismatch(document["fingerprint"], windows) is None
    assert document["reference"]["seeds"] >= 20
    full = document["tiers"][0]["max_ratio"]
    assert max(document["reference"]["ratios"]) <= full, "every calibrated seed earns full credit"
    assert all(ratio > document["tiers"][-1]["max_ratio"] for ratio in document["baselines"].values())


@pytest.fixture(scope="module")
def quick_calibration():
    """A reduced calibration (3 seeds, the notebook's full training budget) on the offline data."""
    return calibrate(seeds=3, processes=2, log=print)


def test_reduced_calibration_passes_the_acceptance_rule(quick_calibration, tmp_path):
    assert quick_calibration.accepted, quick_calibration.problems
    tiers = [t["max_ratio"] for t in quick_calibration.tiers]
    assert tiers == sorted(tiers) and [t["fraction"] for t in quick_calibration.tiers] == [1.0, 0.5, 0.2]
    assert all(r["ratio"] <= tiers[0] for r in quick_calibration.reference)
    assert min(quick_calibration.baselines.values()) > tiers[-1]
    write_thresholds(quick_calibration, tmp_path / "thresholds.json")
    report = write_report(quick_calibration, tmp_path / "report")
    assert "Accepted" in report.read_text() and (tmp_path / "report" / "mae.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "thresholds.json").read_text())["fingerprint"]["sha256"] == quick_calibration.fingerprint["sha256"]


def test_a_too_small_training_budget_is_rejected():
    calibration = calibrate(seeds=2, processes=2, epochs=1, log=print)
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


def test_thresholds_from_other_data_warn_loudly_or_stop_grading(tmp_path, monkeypatch, windows):
    document = json.loads(checks.THRESHOLDS_FILE.read_text())
    document["fingerprint"] = dict(fingerprint(windows), sha256="0" * 64, features=["p (mbar)"])
    other = tmp_path / "thresholds.json"
    other.write_text(json.dumps(document))
    monkeypatch.setattr(checks, "THRESHOLDS_FILE", other)
    said = []
    problem = threshold_warning(strict=False, log=said.append)
    assert "calibrated on other data (different sha256, features" in problem
    assert said and said[0].startswith("WARNING")
    with pytest.raises(NbgraderError, match="Not grading: thresholds were calibrated on other data"):
        threshold_warning(strict=True, log=said.append)
