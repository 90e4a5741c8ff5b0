"""The forecast thresholds: partial-credit tiers, the plausibility bound and the validation bar,
as calibrated by ``jenalab calibrate`` on the course's data."""

from __future__ import annotations

import json
from pathlib import Path

FILE_NAME = "thresholds.json"
PACKAGED = Path(__file__).with_name(FILE_NAME)


def thresholds_path(course_root: Path | None = None) -> Path:
    """The course's own calibration (``<course>/grader_tests/thresholds.json``, the working directory
    by default) when it has one, else the thresholds installed with this package."""
    course = Path.cwd() if course_root is None else Path(course_root)
    own = course / "grader_tests" / FILE_NAME
    return own if own.is_file() else PACKAGED


def load_thresholds(course_root: Path | None = None) -> dict:
    return json.loads(thresholds_path(course_root).read_text())


def tiers(thresholds: dict) -> list[tuple[float, float]]:
    """(highest MAE / persistence MAE, fraction of the points), best first."""
    return sorted((float(t["max_ratio"]), float(t["fraction"])) for t in thresholds["tiers"])


def forecast_fraction(ratio: float, thresholds: dict) -> float:
    """The fraction of the forecast points earned at a given MAE ratio."""
    return next((fraction for max_ratio, fraction in tiers(thresholds) if ratio <= max_ratio), 0.0)
