"""Grading a whole class for real: the submissions corpus through sandboxed `nbgrader autograde`,
the trusted re-check, the gradebook, grades.csv and feedback, on local Dask worker processes."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, CELL_OF_CHECK, GRADED, NOTEBOOK, POINTS_OF_CHECK
from jenalab.corpus import load_corpus, matrix_markdown, mismatches, scratch_course, write_submission
from jenalab.course import autograded_dir, feedback_page, gradebook_url
from jenalab.grading import Options, grade_class
from jenalab.leaks import REDACTED
from jenalab.results import Result
from jenalab.sandbox_process import THREAD_VARIABLES
from jenalab.store import LEDGER, load_result

COURSE = Path(__file__).resolve().parents[1]
CORPUS = load_corpus(COURSE)
SPECIAL = {
    "no_notebook": "no lstm_jena.ipynb in submitted/no_notebook/lstm_jena/",
    "not_json": "the submitted file is not a readable notebook",
}
# Text that must never reach a student: solution and hidden-test markers, grader code, and a line that
# only one other corpus submission holds.
SECRETS = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "from grader_tests.collect import", "def judge_", "def _answers(",
           "_RecordingSGD", "max_ratio")
OTHER_STUDENT_LINE = "squares the errors: large misses cost more"  # only in ok_mse_loss
THREADS_BEFORE = {name: os.environ.get(name) for name in THREAD_VARIABLES}  # read at collection, before any grading


def test_every_submission_ends_with_a_score_and_a_reason(graded):
    root, results, run = graded
    assert not run.infrastructure, [i.message for i in run.infrastructure]
    assert set(results) == {s.name for s in CORPUS} | set(SPECIAL)
    for result in results.values():
        assert set(result.scores) == set(result.max_scores) and result.reason
    report = (root / "reports" / "lstm_jena.html").read_text()
    assert all(student in report for student in results), "the class report lists every submission"


def test_grading_leaves_the_thread_settings_of_its_caller_alone(graded):
    """Dask's local workers are started with one thread each; whatever the caller starts afterwards (a benchmark's
    baseline, a notebook) keeps the caller's settings."""
    assert {name: os.environ.get(name) for name in THREAD_VARIABLES} == THREADS_BEFORE


def test_a_reason_names_lost_points_in_notebook_order_however_the_ledger_stored_them():
    cells = list(GRADED)
    backwards = Result("someone", None, scores=dict.fromkeys(cells[::-1], 0.0),
                       max_scores={cell: float(GRADED[cell].points) for cell in cells[::-1]},
                       messages={cell: f"lost {cell}" for cell in cells[::-1]})
    assert backwards.reason == "; ".join(f"{cell}: lost {cell}" for cell in cells)


def test_the_corpus_matrix_lists_cells_in_notebook_order_however_the_ledger_stored_them():
    cells = list(GRADED)
    backwards = Result("reference", None, scores={cell: float(GRADED[cell].points) for cell in cells[::-1]},
                       max_scores={cell: float(GRADED[cell].points) for cell in cells[::-1]}, messages={})
    header, _, row = matrix_markdown(COURSE, [backwards], "jenalab corpus").splitlines()[4:7]
    assert header == "| submission | " + " | ".join(c.removeprefix("test_") for c in cells) + " | total | as expected |"
    assert row.startswith("| reference | " + " | ".join(f"{GRADED[c].points:g}" for c in cells) + f" | {AUTO_POINTS:g} |")


@pytest.mark.parametrize("submission", CORPUS, ids=lambda s: s.name)
def test_corpus_submission_gets_its_expected_score_message_and_flags(graded, submission):
    _, results, _ = graded
    assert not mismatches(submission, results[submission.name])


def test_reference_gets_full_marks_and_blank_gets_zero(graded):
    root, results, _ = graded
    assert results["reference"].total == results["reference"].max_total == AUTO_POINTS
    assert results["blank"].total == 0
    assert not results["reference"].flags
    with Gradebook(gradebook_url(root)) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, "reference")
        assert submission.code_score == AUTO_POINTS
        assert submission.needs_manual_grade  # the four written answers wait for a human


@pytest.mark.parametrize(("student", "reason"), SPECIAL.items())
def test_unusable_submissions_score_zero_with_the_reason(graded, student, reason):
    root, results, _ = graded
    assert results[student].total == 0 and reason in results[student].reason
    with open(root / "grades.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["student"] == student)
    assert row["auto_score"] == "0.0" and reason in row["reason"]


def test_grades_csv_lists_every_cell_and_flag(graded):
    root, results, _ = graded
    with open(root / "grades.csv") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    assert set(rows) == set(results)
    reference = rows["reference"]
    assert float(reference["auto_score"]) == AUTO_POINTS
    assert float(reference[CELL_OF_CHECK["forecast"]]) == POINTS_OF_CHECK["forecast"]
    for name, result in results.items():
        assert float(rows[name]["auto_score"]) == result.total
        assert rows[name]["flags"] == " | ".join(result.flags)


def test_feedback_shows_verdicts_but_nothing_that_is_not_the_students(graded):
    root, results, _ = graded
    for student in results:
        page = feedback_page(root, student)
        if not (autograded_dir(root, student) / NOTEBOOK).is_file():
            continue  # nothing ran (no notebook, unreadable file): the reason is in grades.csv
        html = page.read_text()
        for secret in SECRETS:
            assert secret not in html, f"feedback of {student} shows {secret!r}"
        if student != "ok_mse_loss":
            assert OTHER_STUDENT_LINE not in html, f"feedback of {student} shows another student's code"
        assert not (page.parent / "evidence").exists() and not (page.parent / LEDGER).exists()
        assert "Grader: " in html and " of 30 points." in html
        own = (root / "submitted" / student / ASSIGNMENT / NOTEBOOK).read_text().count("/grading/")
        assert html.count("/grading/") <= own, f"feedback of {student} shows the grader's paths"
        assert html.count("Grader: ") == len(GRADED) and "CheckFailed" not in html, "one verdict per graded cell"
    assert "Forecast from the LSTM's output after the last time step" in feedback_page(root, "wrong_first_time_step").read_text()
    assert "Test-period MAE of final_model" in feedback_page(root, "reference").read_text()


@pytest.mark.parametrize("student", ["attack_prints_files", "attack_prints_history"])
def test_printed_grader_and_solution_text_is_removed_from_feedback_and_said_so(graded, student):
    root, _, _ = graded
    executed = (autograded_dir(root, student) / NOTEBOOK).read_text()
    assert any(secret in executed for secret in ("def _answers(", "collect_model(WeatherLSTM)", "def collect_model")), \
        "the attack printed nothing secret: it tests nothing"
    assert REDACTED in feedback_page(root, student).read_text()


def test_the_kernel_read_nothing_of_the_course_or_other_students(graded):
    root, _, _ = graded
    printed = (autograded_dir(root, "attack_prints_files") / NOTEBOOK).read_text()
    for marker in ("BEGIN SOLUTION", OTHER_STUDENT_LINE, "SQLite format", "\"tiers\""):
        assert marker not in printed, f"the grading kernel could read {marker!r}"


def test_nothing_in_the_kernels_reach_is_worth_taking(graded):
    """A notebook printed every module and file its kernel could reach (attack_reads_everything): the collectors were
    among them, but no line of the instructor's solutions and none of the judges or reference computations."""
    from jenalab.course import solved_cells
    from jenalab.leaks import code_runs, notebook_runs, text_runs

    root, _, _ = graded
    printed = "".join(json.dumps(cell.get("outputs", [])) for cell in
                      nbformat.read(autograded_dir(root, "attack_reads_everything") / NOTEBOOK, as_version=4).cells)
    assert "def collect_model" in printed and "jena_weather" in printed, "the attack printed nothing: it tests nothing"
    public = notebook_runs(COURSE / "release" / ASSIGNMENT / NOTEBOOK)
    for path in (COURSE / "source" / ASSIGNMENT / "jena_weather").glob("*.py"):
        public |= code_runs(path.read_text()) | text_runs(path.read_text())
    for path in (COURSE / "grader_tests").glob("*.py"):
        if path.name in ("collect.py", "problems.py", "evidence.py", "contract.py", "__init__.py"):
            public |= code_runs(path.read_text())
    secret = {name: code_runs(source) - public for name, source in solved_cells(COURSE, solutions_only=True).items()}
    secret |= {path.name: code_runs(path.read_text()) - public for path in (COURSE / "grader_tests").glob("*.py")
               if path.name in ("judges.py", "probes.py", "verdicts.py", "archive.py", "thresholds.py")}
    seen = text_runs(printed)
    assert all(secret[name] for name in ("model_definition", "training_loop", "judges.py", "probes.py")), "nothing to find"
    assert {name: len(runs & seen) for name, runs in secret.items() if runs & seen} == {}


def test_odd_outputs_are_capped_and_inert_in_what_is_stored(graded):
    root, results, _ = graded
    huge = (autograded_dir(root, "harmful_huge_output") / NOTEBOOK)
    assert huge.stat().st_size < 2 * 2**20 and "Output removed: one output was larger than 2 MiB" in huge.read_text()
    assert "Output removed: one output was larger than 2 MiB" in feedback_page(root, "harmful_huge_output").read_text()
    stored = nbformat.read(autograded_dir(root, "harmful_script_output") / NOTEBOOK, as_version=4)
    outputs = json.dumps([cell.get("outputs", []) for cell in stored.cells])
    assert "<script" not in outputs and "onerror" not in outputs and "application/javascript" not in outputs
    assert "image/svg+xml" not in outputs and "<b>bold</b>" in outputs


def test_a_notebook_that_ends_its_kernel_gets_its_grade_and_feedback(graded):
    root, results, _ = graded
    ended = results["attack_exits_kernel"]
    assert ended.total == 50 and "the kernel stopped in cell 'final_model'" in ended.reason
    page = feedback_page(root, "attack_exits_kernel").read_text()
    assert "The kernel stopped while this cell ran" in page and "This cell did not run" in page


def test_grading_again_resumes_and_regrading_is_deterministic(graded):
    root, results, _ = graded
    usual = [s for s in results if s not in {c.name for c in CORPUS if c.cell_timeout}]  # graded with the usual limits
    ledgers = {s: (autograded_dir(root, s) / LEDGER).read_text() for s in usual}
    again = grade_class(root, Options(workers=1), students=usual)  # nothing changed: nothing is graded again
    assert again.graded_now == [] and not again.infrastructure
    assert {s: (autograded_dir(root, s) / LEDGER).read_text() for s in usual} == ledgers
    again = grade_class(root, Options(workers=1, regrade=True), students=["ok_mse_loss"])
    assert again.graded_now == ["ok_mse_loss"]
    assert again.results[0].scores == results["ok_mse_loss"].scores


@pytest.fixture
def blank_class(tmp_path):
    """A course folder with three untouched releases (fast to grade)."""
    root = scratch_course(COURSE, tmp_path / "course")
    blank = next(s for s in CORPUS if s.name == "blank")
    for i in range(3):
        write_submission(blank, COURSE, root, student=f"student{i}")
    return root


def test_a_changed_grader_regrades_automatically(blank_class):
    first = grade_class(blank_class, Options(workers=1), students=["student0"])
    assert first.graded_now == ["student0"]
    thresholds = blank_class / "grader_tests" / "thresholds.json"
    document = json.loads(thresholds.read_text())
    document["tiers"][0]["max_ratio"] += 0.001
    thresholds.write_text(json.dumps(document))
    again = grade_class(blank_class, Options(workers=1), students=["student0"])
    assert again.graded_now == ["student0"], "new thresholds must regrade the submission"
    assert again.results[0].grader_version != first.results[0].grader_version


def test_an_interrupted_run_continues_where_it_stopped(blank_class):
    """Kill a grading run after its first submission is stored; the rerun keeps it and grades the rest."""
    command = [sys.executable, "-c", "from jenalab.grading import *; "
               f"grade_class(__import__('pathlib').Path({str(blank_class)!r}), Options(workers=1))"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledgers = [autograded_dir(blank_class, f"student{i}") / LEDGER for i in range(3)]
    deadline = time.monotonic() + 600
    while not any(p.is_file() for p in ledgers) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = {p: p.read_text() for p in ledgers if p.is_file()}
    assert 0 < len(done) < 3, "the run should have been stopped part-way"
    run = grade_class(blank_class, Options(workers=1))
    assert [r.student for r in run.results] == ["student0", "student1", "student2"]
    for path, text in done.items():
        assert path.read_text() == text, "a submission graded before the interruption was graded again"
    assert all(p.is_file() for p in ledgers)


def test_ledger_round_trips(graded):
    root, results, _ = graded
    stored = load_result(root, "reference")
    assert stored.scores == results["reference"].scores
    assert json.loads((autograded_dir(root, "reference") / LEDGER).read_text())["student"] == "reference"
    assert nbformat.read(autograded_dir(root, "reference") / NOTEBOOK, as_version=4).cells


def test_pytest_suite_rechecks_one_graded_submission(graded):
    root, _, _ = graded
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "jenalab.recheck", str(COURSE / "grader_tests")]
    ok = subprocess.run([*suite, "--submission", str(autograded_dir(root, "reference"))], capture_output=True, text=True,
                        cwd=root)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert "7 passed" in ok.stdout
    wrong = subprocess.run([*suite, "--submission", str(autograded_dir(root, "wrong_no_zero_grad"))],
                           capture_output=True, text=True, cwd=root)
    assert wrong.returncode == 1 and "zero_grad" in wrong.stdout


def jenalab(*args, cwd):
    return subprocess.run([str(Path(sys.executable).with_name("jenalab")), *args], capture_output=True, text=True, cwd=cwd)


def test_a_mistyped_student_is_an_error_that_writes_nothing(blank_class):
    done = jenalab("grade", "--student", "studnet1", cwd=blank_class)
    assert done.returncode == 2
    assert "No submission folder submitted/<student>/ for 'studnet1' (did you mean 'student1'" in done.stderr
    assert not (blank_class / "grades.csv").exists() and not (blank_class / "autograded" / "studnet1").exists()


def test_a_data_file_too_short_for_the_split_is_one_line(excerpt_file, tmp_path):
    done = jenalab("summary", "--data", str(excerpt_file), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.fullmatch(r"error: .*26 hourly rows are too few.*at least \d+ hourly rows.*\n", done.stderr)


def test_student_script_never_runs_in_a_feedback_page(graded, chromium):
    """harmful_script_output displayed HTML, JavaScript, SVG and markdown with script, and wrote script into a written
    answer: its feedback page, opened in headless Chromium, runs none of it and still shows the harmless part."""
    from selenium.webdriver.common.by import By

    root, _, _ = graded
    browser = chromium()
    browser.get(feedback_page(root, "harmful_script_output").as_uri())
    browser.find_element(By.TAG_NAME, "body")
    assert not browser.title.startswith("pwned") and browser.title == "lstm_jena"
    assert "Gates decide how much passes." in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.XPATH, "//b[text()='bold']"), "the harmless HTML is still shown"
    browser.get((root / "reports" / "lstm_jena.html").as_uri())
    assert browser.title == "lstm_jena: class report"
