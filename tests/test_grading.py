"""Grading a whole class for real: the submissions corpus through sandboxed `nbgrader autograde`,
the trusted re-check, the gradebook, grades.csv and feedback, on local Dask worker processes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader_tests.corpus import grade_corpus, load_corpus, mismatches, scratch_course, write_submission
from jenalab.course import ASSIGNMENT, NOTEBOOK
from jenalab.grading import LEDGER, Options, autograded_dir, grade_class, gradebook_url, load_result

CORPUS = load_corpus()
SPECIAL = {
    "no_notebook": "no lstm_jena.ipynb in submitted/no_notebook/lstm_jena/",
    "not_json": "the submitted file is not a readable notebook",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The whole corpus, plus two unusable submissions, graded once with two local workers."""
    start = time.perf_counter()
    root = tmp_path_factory.mktemp("course")
    results = {r.student: r for r in grade_corpus(root, workers=2)}
    print(f"graded {len(results)} submissions in {time.perf_counter() - start:.0f} s")
    return root, results


def test_every_submission_ends_with_a_score_and_a_reason(graded):
    _, results = graded
    assert set(results) == {s.name for s in CORPUS} | set(SPECIAL)
    for result in results.values():
        assert set(result.scores) == set(result.max_scores) and result.reason


@pytest.mark.parametrize("submission", CORPUS, ids=lambda s: s.name)
def test_corpus_submission_gets_its_expected_score_and_message(graded, submission):
    _, results = graded
    assert not mismatches(submission, results[submission.name])


def test_reference_gets_full_marks_and_blank_gets_zero(graded):
    root, results = graded
    assert results["reference"].total == results["reference"].max_total == 80
    assert results["blank"].total == 0
    assert not results["reference"].flags
    with Gradebook(gradebook_url(root)) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, "reference")
        assert submission.code_score == 80
        assert submission.needs_manual_grade  # the four written answers wait for a human


@pytest.mark.parametrize(("student", "reason"), SPECIAL.items())
def test_unusable_submissions_score_zero_with_the_reason(graded, student, reason):
    root, results = graded
    assert results[student].total == 0 and reason in results[student].reason
    with open(root / "grades.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["student"] == student)
    assert row["auto_score"] == "0.0" and reason in row["reason"]


def test_grades_csv_lists_every_cell_and_flag(graded):
    root, results = graded
    with open(root / "grades.csv") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    assert set(rows) == set(results)
    reference = rows["reference"]
    assert float(reference["auto_score"]) == 80 and float(reference["test_forecast"]) == 30
    for name, result in results.items():
        assert float(rows[name]["auto_score"]) == result.total
        assert rows[name]["flags"] == " | ".join(result.flags)


def test_feedback_shows_messages_but_no_hidden_check_code(graded):
    root, results = graded
    for student in results:
        if not (autograded_dir(root, student) / NOTEBOOK).is_file():
            continue  # nothing ran (no notebook, unreadable file): the reason is in grades.csv
        page = root / "feedback" / student / ASSIGNMENT / "lstm_jena.html"
        assert page.is_file(), f"no feedback for {student}"
        html = page.read_text()
        for secret in ("BEGIN HIDDEN TESTS", "from grader_tests.checks import", "def judge_", "collect_model", "_Probe", "checks.py"):
            assert secret not in html, f"feedback of {student} shows {secret!r}"
        assert not (page.parent / "evidence").exists() and not (page.parent / LEDGER).exists()
    html = (root / "feedback" / "wrong_first_time_step" / ASSIGNMENT / "lstm_jena.html").read_text()
    assert "Did you take the last time step of the LSTM output" in html


def test_a_patched_in_kernel_check_is_overruled_by_the_trusted_recheck(graded):
    _, results = graded
    cheat = results["patches_grader_checks"]
    assert cheat.scores["test_model_shapes"] == 0
    assert cheat.kernel_scores["test_model_shapes"] == 15, "the patched in-kernel check passed"
    assert any("differs from the trusted re-check" in flag for flag in cheat.flags)
    assert any("suspicious code: touches the grader's code" in flag for flag in cheat.flags)


def test_grading_again_resumes_and_regrading_is_deterministic(graded):
    root, results = graded
    ledgers = {s: (autograded_dir(root, s) / LEDGER).read_text() for s in results}
    again = {r.student: r for r in grade_class(root, Options(workers=1))}  # nothing changed: nothing is regraded
    assert {s: (autograded_dir(root, s) / LEDGER).read_text() for s in results} == ledgers
    assert {s: r.scores for s, r in again.items()} == {s: r.scores for s, r in results.items()}
    regraded = grade_class(root, Options(workers=1, regrade=True), students=["ok_mse_loss"])[0]
    assert regraded.scores == results["ok_mse_loss"].scores
    assert regraded.graded_at >= results["ok_mse_loss"].graded_at


def test_an_interrupted_run_continues_where_it_stopped(tmp_path):
    """Kill a grading run after its first submission is stored; the rerun keeps it and grades the rest."""
    blanks = [s for s in CORPUS if s.name == "blank"] * 3
    root = scratch_course(tmp_path)
    for i, submission in enumerate(blanks):
        write_submission(submission, root / "submitted", student=f"student{i}")
    command = [sys.executable, "-c", "from jenalab.grading import *; import sys; "
               f"grade_class(__import__('pathlib').Path({str(root)!r}), Options(workers=1))"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledgers = [autograded_dir(root, f"student{i}") / LEDGER for i in range(3)]
    deadline = time.monotonic() + 600
    while not any(p.is_file() for p in ledgers) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = {p: p.read_text() for p in ledgers if p.is_file()}
    assert 0 < len(done) < 3, "the run should have been stopped part-way"
    results = grade_class(root, Options(workers=1))
    assert [r.student for r in results] == ["student0", "student1", "student2"]
    for path, text in done.items():
        assert path.read_text() == text, "a submission graded before the interruption was graded again"
    assert all(p.is_file() for p in ledgers)


def test_ledger_round_trips(graded):
    root, results = graded
    stored = load_result(root, "reference")
    assert stored.scores == results["reference"].scores
    assert json.loads((autograded_dir(root, "reference") / LEDGER).read_text())["student"] == "reference"
    assert nbformat.read(autograded_dir(root, "reference") / NOTEBOOK, as_version=4).cells


def test_pytest_suite_rechecks_one_graded_submission(graded):
    root, _ = graded
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).parents[1] / "grader_tests")]
    ok = subprocess.run([*suite, "--submission", str(autograded_dir(root, "reference"))], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "7 passed" in ok.stdout
    wrong = subprocess.run([*suite, "--submission", str(autograded_dir(root, "wrong_no_zero_grad"))],
                           capture_output=True, text=True)
    assert wrong.returncode == 1 and "zero_grad" in wrong.stdout
