"""Shared fixtures: the real offline Jena files, found through $JENA_DATA_MIRROR."""

import os
from pathlib import Path

import pytest

from jenalab.data import ENV_DIR, ENV_FILE, ENV_MIRROR, ENV_NO_DOWNLOAD, ENV_URL, HOURLY_MIRROR_NAME

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
    from jenalab.data import read_records

    return read_records(hourly_file)


@pytest.fixture(scope="session")
def windows(hourly_records):
    from jenalab.pipeline import build_windows

    return build_windows(hourly_records)


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """A data lookup that sees nothing: empty data dir, no mirror, no download."""
    for name in (ENV_FILE, ENV_MIRROR, ENV_URL):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "jena_data"))
    monkeypatch.setenv(ENV_NO_DOWNLOAD, "1")
    return tmp_path / "jena_data"
