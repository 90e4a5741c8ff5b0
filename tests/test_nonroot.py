"""Grading started by an ordinary user: the kernel then runs in an unprivileged bubblewrap sandbox
(a user namespace) with that user's rights, and must still see nothing but its own files.

CI runs this as the unprivileged user named by JENALAB_TEST_USER (see .ci/run)."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jenalab.corpus import load_corpus, mismatches, scratch_course, write_submission
from jenalab.course import feedback_page
from jenalab.leaks import REDACTED
from jenalab.store import load_result

COURSE = Path(__file__).resolve().parents[1]
CORPUS = {s.name: s for s in load_corpus(COURSE)}
USER = os.environ.get("JENALAB_TEST_USER")
STUDENTS = ("reference", "attack_prints_files", "attack_prints_history", "attack_lookup_in_data",
            "attack_fake_grader_module")

pytestmark = pytest.mark.skipif((os.geteuid() != 0 or not USER) and not os.environ.get("CI"),
                                reason="needs root and JENALAB_TEST_USER, an unprivileged user to grade as")


@pytest.fixture(scope="module")
def user_course():
    """A course folder and a HOME that belong to the unprivileged user."""
    account = pwd.getpwnam(USER)
    top = Path(tempfile.mkdtemp(prefix="jenalab-nonroot-"))
    root = scratch_course(COURSE, top / "course")
    for name in STUDENTS:
        write_submission(CORPUS[name], COURSE, root)
    (top / "home").mkdir()
    (top / "home" / "private.json").write_text('{"note": "USER_HOME_SECRET"}')  # where the file attack looks
    for path in [top, *top.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)
    yield root, top / "home"
    shutil.rmtree(top, ignore_errors=True)


def test_an_ordinary_user_grades_the_reference_fully_and_the_attacks_as_intended(user_course):
    root, home = user_course
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
           **{k: v for k, v in os.environ.items() if k.startswith("JENA_DATA")}}
    done = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
                           str(Path(sys.executable).with_name("jenalab")), "grade", "--require-isolation"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    protections = next(line for line in done.stdout.splitlines() if line.startswith("Sandbox:"))
    assert "filesystem isolation (bubblewrap)" in protections and "runs as root" not in protections
    for name in STUDENTS:
        assert not mismatches(CORPUS[name], load_result(root, name)), name
    assert load_result(root, "reference").total == 80
    printed = (root / "autograded" / "attack_prints_files" / "lstm_jena" / "lstm_jena.ipynb").read_text()
    for secret in ("BEGIN SOLUTION", "SQLite format", '"tiers"', "USER_HOME_SECRET"):
        assert secret not in printed, f"the kernel read {secret!r}"
    for student in ("attack_prints_files", "attack_prints_history"):
        assert REDACTED in feedback_page(root, student).read_text()
