"""Shared fixtures: the real offline Jena files, found through $JENA_DATA_MIRROR, and the corpus
graded once for the whole session."""

import os
import time
from pathlib import Path

import pytest

from jena_weather.data import ENV_DIR, ENV_FILE, ENV_MIRROR, ENV_NO_DOWNLOAD, ENV_URL, HOURLY_MIRROR_NAME

COURSE = Path(__file__).resolve().parents[1]  # this repository is a course folder
MIRROR = Path(os.environ.get(ENV_MIRROR) or Path(__file__).resolve().parents[2] / "shared" / "jena_data")
HOURLY_FILE = MIRROR / HOURLY_MIRROR_NAME
EXCERPT_FILE = MIRROR / "jena_climate_2009_excerpt_10min.csv"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real Jena file {path} is absent; set {ENV_MIRROR} to the directory that holds it")
    return path


@pytest.fixture(scope="session")
def hourly_file() -> Path:
    return _require(HOURLY_FILE)


@pytest.fixture(scope="session")
def excerpt_file() -> Path:
    return _require(EXCERPT_FILE)


@pytest.fixture(scope="session")
def hourly_records(hourly_file):
    from jena_weather.data import read_records

    return read_records(hourly_file)


@pytest.fixture(scope="session")
def windows(hourly_records):
    """All three periods, as the grader builds them (a notebook gets the training and validation periods)."""
    from jena_weather.pipeline import SPLITS, build_windows

    return build_windows(hourly_records, periods=SPLITS)


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """A data lookup that sees nothing: empty data dir, no mirror, no download."""
    for name in (ENV_FILE, ENV_MIRROR, ENV_URL):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "jena_data"))
    monkeypatch.setenv(ENV_NO_DOWNLOAD, "1")
    return tmp_path / "jena_data"


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The whole corpus, plus two unusable submissions, graded once with two local workers:
    (course folder, results by student, the ClassRun)."""
    from jenalab.corpus import grade_corpus

    start = time.perf_counter()
    root = tmp_path_factory.mktemp("course")
    run = grade_corpus(COURSE, root, workers=2)
    print(f"graded {len(run.results)} submissions in {time.perf_counter() - start:.0f} s")
    return root, {r.student: r for r in run.results}, run
