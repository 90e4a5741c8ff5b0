"""The project installed normally (not from this clone): what it ships, and that grading and
calibration work from the course folder where the instructor runs them."""

import os
import subprocess
from pathlib import Path

import pytest

from jenalab.corpus import load_corpus, scratch_course, write_submission
from jenalab.store import load_result

COURSE = Path(__file__).resolve().parents[1]
INSTALLED = COURSE / ".venv-worker"

pytestmark = pytest.mark.skipif(not (INSTALLED / ".installed").is_file() and not os.environ.get("CI"),
                                reason="no ordinary install (make .venv-worker/.installed)")


def installed_files() -> list[str]:
    [record] = INSTALLED.glob("lib/python*/site-packages/jena_lstm_lab-*.dist-info/RECORD")
    return [line.split(",")[0] for line in record.read_text().splitlines()]


def test_the_install_holds_the_three_packages_but_no_notebook_or_corpus():
    files = installed_files()
    for package in ("jena_weather/", "grader_tests/", "jenalab/"):
        assert any(f.startswith(package) for f in files), package
    assert "grader_tests/thresholds.json" in files
    assert not [f for f in files if f.endswith(".ipynb") or "/submissions/" in f]
    assert not any("__editable__" in f for f in files), "this must be an ordinary install"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = scratch_course(COURSE, tmp_path_factory.mktemp("installed") / "course")
    write_submission(next(s for s in load_corpus(COURSE) if s.name == "blank"), COURSE, root)
    return root


def run(*args, cwd):
    return subprocess.run([str(INSTALLED / "bin" / "jenalab"), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{INSTALLED / 'bin'}:{os.environ['PATH']}"}, timeout=900)


def test_an_ordinary_install_grades_in_the_course_folder(course):
    done = run("grade", "--workers", "1", cwd=course)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = load_result(course, "blank")
    assert result.total == 0 and "is not implemented yet" in result.reason


def test_an_ordinary_install_calibrates_in_the_course_folder(course, tmp_path):
    done = run("calibrate", "--seeds", "1", "--epochs", "1", "--bar-seeds", "0", "--output", str(tmp_path), cwd=course)
    assert done.returncode == 1 and "Thresholds NOT accepted" in done.stderr  # one epoch is not enough, as it should be
    assert "baseline 'ridge'" in done.stderr and "would earn points" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "calibration" / "report.md").is_file()
