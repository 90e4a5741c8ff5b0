"""Shared fixtures: the real offline Jena files, found through $JENA_DATA_MIRROR, and the corpus
graded once for the whole session, headless Chromium and nbgrader's formgrader."""

import os
import time
from pathlib import Path

import pytest

from jena_weather.data import ENV_DIR, ENV_FILE, ENV_MIRROR, ENV_NO_DOWNLOAD, ENV_URL, HOURLY_MIRROR_NAME
from servers import running_jupyter

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


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")  # Debian's packages
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture
def chromium(tmp_path, monkeypatch):
    """Starts headless Chromium under Selenium: ``chromium(window="1280,900")`` gives a driver, quit at the end.
    A missing browser skips the test on a workstation and fails it in CI (CI set)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = f"needs {CHROMIUM} and {CHROMEDRIVER} (`make browser-tools`, or apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must never download a browser or driver
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    drivers = []

    def start(window: str = "1280,900"):
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--window-size={window}", f"--user-data-dir={tmp_path / f'chromium-{len(drivers)}'}"):
            options.add_argument(flag)
        drivers.append(webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER))))
        return drivers[-1]

    yield start
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="session")
def formgrader_at(tmp_path_factory):
    """``with formgrader_at(root) as (url, token):`` a real Jupyter server with nbgrader's formgrader on a course folder
    (its own config and runtime folders)."""
    def start(root: Path):
        state = tmp_path_factory.mktemp("jupyter")
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
               "JUPYTER_DATA_DIR": str(state / "data")}
        return running_jupyter(["jupyter", "server"], root, env, state / "server.log",
                               "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True")
    return start
