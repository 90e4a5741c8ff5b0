"""A course term, run as an instructor runs it, with the real commands: a roster imported with
``nbgrader db student import``; submissions taken in from a Canvas and a Moodle download (real zips)
with ``jenalab collect``; a due date, a late policy and an extension; ``jenalab grade``; the feedback
pages before hand grading; hand grading in nbgrader's formgrader in headless Chromium; then the
export for the LMS, the class report and the regenerated feedback with those points.

The class: ada (reference, on time), ben (no zero_grad, two days late, then one day's extension),
cy (a flagged forecast cell, from the Moodle download) and dee (on the roster, never submitted).
The tests run in file order: each step builds on the one before, as in a term."""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader_tests.contract import ASSIGNMENT, AUTO_POINTS, CELL_OF_CHECK, NOTEBOOK, NOTEBOOK_ID, WRITTEN_ANSWERS
from jenalab.corpus import build_notebook, parse, scratch_course
from jenalab.course import feedback_page, gradebook_url, run_nbgrader
from jenalab.deadlines import LatePolicy, parse_time, submission_time
from jenalab.gradesheet import standings
from jenalab.lms import Person, identify

COURSE = Path(__file__).resolve().parents[1]
CORPUS = COURSE / "grader_tests" / "submissions"
JENALAB = Path(sys.executable).with_name("jenalab")
ROSTER = "id,first_name,last_name,email,lms_user_id\n" + "\n".join([
    "ada,Ada,Lovelace,ada@uni.example,1001",
    "ben,Ben,Bitdiddle,ben@uni.example,1002",
    "cy,Cy,D'Fect,cy@uni.example,1003",
    "dee,Dee,Absent,dee@uni.example,1004"]) + "\n"
LATE_POLICY = """
c.AssignLatePenalties.plugin_class = "jenalab.deadlines.LatePolicy"
c.LatePolicy.percent_per_day = 10
c.LatePolicy.max_percent = 50
c.LatePolicy.zero_after_days = 7
c.LatePolicy.grace_minutes = 15
"""
BERLIN = "Europe/Berlin"
DUE = "2026-03-01 23:59"  # Berlin: 22:59 UTC
FORECAST = CELL_OF_CHECK["forecast"]
ANSWER_POINTS = dict(zip(WRITTEN_ANSWERS, (5, 4, 3, 5)))  # what the instructor gives ada by hand


def jenalab(root: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(JENALAB), "--course", str(root), *args], capture_output=True, text=True)
    print(f"$ jenalab {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


def _notebook_bytes(corpus_file: str, root: Path) -> bytes:
    return nbformat.writes(build_notebook(parse(CORPUS / f"{corpus_file}.py"), root)).encode()


def _zip(path: Path, files: dict[str, tuple[bytes, tuple]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, when) in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The course folder after the roster, both downloads, the due date and grading; (root, collect outputs, grade run)."""
    root = scratch_course(COURSE, tmp_path_factory.mktemp("term"))
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(LATE_POLICY)
    (root / "roster.csv").write_text(ROSTER)
    run_nbgrader("db", "student", "import", "roster.csv", root=root)
    canvas = _zip(root.parent / "canvas_download.zip", {
        "lovelaceada_1001_5001_lstm_jena.ipynb": (_notebook_bytes("reference", root), (2026, 3, 1, 20, 0, 0)),
        "bitdiddleben_late_1002_5002_lstm_jena-1.ipynb": (_notebook_bytes("wrong_no_zero_grad", root), (2026, 3, 3, 10, 0, 0)),
        "strangerzed_9999_5003_lstm_jena.ipynb": (_notebook_bytes("blank", root), (2026, 3, 1, 9, 0, 0)),
    })
    moodle = _zip(root.parent / "moodle_download.zip", {
        "Cy D'Fect_1003_assignsubmission_file_/lstm_jena.ipynb": (_notebook_bytes("attack_pickled_archive", root),
                                                                   (2026, 3, 1, 12, 0, 0)),
    })
    collected = [jenalab(root, "collect", str(download), "--zip-timezone", BERLIN) for download in (canvas, moodle)]
    due = jenalab(root, "due", DUE, "--timezone", BERLIN)
    assert due.returncode == 0, due.stderr
    graded = jenalab(root, "grade", "--workers", "2")
    return root, collected, graded


def rows_by_student(root: Path) -> dict:
    return {row.student: row for row in standings(root)}


# --- pieces that need no course --------------------------------------------------------------


def test_late_policy_counts_started_days_up_to_a_cap_and_nothing_after_the_hard_deadline():
    policy = LatePolicy(percent_per_day=10, max_percent=50, zero_after_days=7, grace_minutes=15)
    hour, day = 3600, 86400
    assert policy.late_submission_penalty("s", 80, 10 * 60) == 0  # within the grace
    assert policy.late_submission_penalty("s", 80, hour) == 8  # a started day: 10 %
    assert policy.late_submission_penalty("s", 80, day + hour) == 16  # two started days
    assert policy.late_submission_penalty("s", 80, 6 * day) == 40  # capped at 50 %, not 60 %
    assert policy.late_submission_penalty("s", 80, 8 * day) == 80  # past the hard deadline: nothing counts
    assert "10% of the points per started day late, at most 50%" in policy.describe()


def test_times_are_read_in_the_given_zone_and_bad_ones_are_explained():
    assert parse_time(DUE, BERLIN) == dt.datetime(2026, 3, 1, 22, 59)
    assert parse_time("2026-03-01T23:59+01:00") == dt.datetime(2026, 3, 1, 22, 59)
    assert parse_time("2026-07-01 12:00", BERLIN) == dt.datetime(2026, 7, 1, 10, 0)  # summer time
    from jenalab.course import CourseError

    with pytest.raises(CourseError, match="is not a date and time"):
        parse_time("next friday-ish")
    with pytest.raises(CourseError, match="unknown time zone"):
        parse_time(DUE, "Mars/Olympus")


@pytest.mark.parametrize("name, who", [
    ("lovelaceada_1001_5001_lstm_jena.ipynb", "ada"),  # Canvas, matched by the Canvas user id
    ("ben_late_77_5002_lstm_jena.ipynb", "ben"),  # Canvas, login as the student id
    ("bitdiddleben_88_5002_lstm_jena-2.ipynb", "ben"),  # Canvas, by the name run together
    ("Cy D'Fect_4242_assignsubmission_file_lstm_jena.ipynb", "cy"),  # Moodle, by the full name
    ("Somebody Else_1004_assignsubmission_file_/lstm_jena.ipynb", "dee"),  # Moodle folder, by the id
    ("strangerzed_9999_5003_lstm_jena.ipynb", None),
    ("lstm_jena.ipynb", None),
])
def test_lms_file_names_are_matched_to_the_roster(name, who):
    people = [Person("ada", "Ada", "Lovelace", "1001"), Person("ben", "Ben", "Bitdiddle", "1002"),
              Person("cy", "Cy", "D'Fect", "1003"), Person("dee", "Dee", "Absent", "1004")]
    assert identify(f"/downloads/{name}", people) == who


# --- the term ---------------------------------------------------------------------------------


def test_lms_downloads_are_collected_with_their_times(term):
    root, collected, _ = term
    assert all(done.returncode == 0 for done in collected), [done.stderr for done in collected]
    assert "Collected 2 submission(s) into submitted/: ada, ben" in collected[0].stdout
    assert "1 notebook(s) match no one on the roster" in collected[0].stdout
    assert "strangerzed_9999_5003_lstm_jena.ipynb" in collected[0].stdout
    assert "Collected 1 submission(s) into submitted/: cy" in collected[1].stdout
    for student, when in (("ada", dt.datetime(2026, 3, 1, 19, 0)), ("ben", dt.datetime(2026, 3, 3, 9, 0)),
                          ("cy", dt.datetime(2026, 3, 1, 11, 0))):
        assert (root / "submitted" / student / ASSIGNMENT / NOTEBOOK).is_file()
        assert submission_time(root, student) == when  # Berlin time in the zip, UTC in timestamp.txt
    assert not (root / "submitted" / "dee").exists()


def test_every_collected_submission_is_graded(term):
    root, _, graded = term
    assert graded.returncode == 0, graded.stdout + graded.stderr
    rows = rows_by_student(root)
    assert rows["ada"].automatic == AUTO_POINTS
    assert rows["ben"].automatic < AUTO_POINTS
    assert any(flag.startswith(f"{FORECAST}:") for flag in rows["cy"].flags)
    assert rows["dee"].status == "missing" and rows["dee"].total is None


def test_late_penalty_follows_the_policy_and_the_extension(term):
    root, _, _ = term
    rows = rows_by_student(root)
    assert rows["ada"].penalty == 0 and rows["cy"].penalty == 0
    ben = rows["ben"]  # due 22:59 UTC on March 1st, in on March 3rd at 09:00: two started days
    assert ben.due == dt.datetime(2026, 3, 1, 22, 59)
    assert ben.penalty == pytest.approx(0.2 * ben.automatic)
    extended = jenalab(root, "extend", "ben", "--days", "1")
    assert extended.returncode == 0, extended.stderr
    ben = rows_by_student(root)["ben"]
    assert ben.due == dt.datetime(2026, 3, 2, 22, 59) and ben.penalty == pytest.approx(0.1 * ben.automatic)
    with Gradebook(gradebook_url(root)) as gradebook:  # where nbgrader's own pages read it
        notebook = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, "ben")
        assert notebook.late_submission_penalty == pytest.approx(ben.penalty)
    unknown = jenalab(root, "extend", "zoe", "--days", "1")
    assert unknown.returncode == 2 and "No student 'zoe'" in unknown.stderr


def test_feedback_before_hand_grading_says_what_is_pending(term):
    root, _, _ = term
    assert jenalab(root, "feedback").returncode == 0
    page = feedback_page(root, "ada").read_text()
    assert f"Automatic points: {AUTO_POINTS:g} of {AUTO_POINTS:g}" in page
    assert "graded by hand, pending (0 of 4 graded so far)" in page
    assert page.count("graded by hand: pending") == len(WRITTEN_ANSWERS)
    assert "0.0 / 5.0" not in page  # an answer nobody graded is not shown as 0 points
    ben = feedback_page(root, "ben").read_text()
    assert re.search(r"late penalty -\d", ben) and "Late submission: -" in ben


def test_export_before_hand_grading_leaves_the_incomplete_empty(term):
    root, _, _ = term
    done = jenalab(root, "export")
    assert done.returncode == 0, done.stderr
    assert "Left empty in the Canvas file" in done.stdout and "ada: hand grading pending" in done.stdout
    canvas = list(csv.reader((root / "exports" / f"{ASSIGNMENT}_canvas.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT]
    assert canvas[1][0] == "Points Possible" and canvas[1][-1] == "100"
    by_login = {line[3]: line for line in canvas[2:]}
    assert by_login["dee"][-1] == "0" and by_login["dee"][0] == "Absent, Dee" and by_login["dee"][1] == "1004"
    assert by_login["ada"][-1] == ""


def _grade_by_hand(browser, url: str, token: str, root: Path, student: str, points: dict[str, float]) -> None:
    """Open the student's submission in the formgrader, type each cell's points and leave the field, as an instructor
    does; wait until the gradebook holds them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    with Gradebook(gradebook_url(root)) as gradebook:
        submission = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student).id
    browser.get(f"{url}/formgrader?token={token}")
    browser.get(f"{url}/formgrader/submissions/{submission}/")
    for grade_id, value in points.items():
        field = WebDriverWait(browser, 30).until(expected_conditions.element_to_be_clickable((By.ID, grade_id)))
        field.clear()
        field.send_keys(f"{value:g}", Keys.TAB)  # the formgrader saves on change
    deadline = time.monotonic() + 30
    while True:
        with Gradebook(gradebook_url(root)) as gradebook:
            grades = {g.name: g.manual_score for g in gradebook.find_submission_notebook(
                NOTEBOOK_ID, ASSIGNMENT, student).grades}
        if all(grades[g] == v for g, v in points.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the formgrader saves in the background
    assert {g: grades[g] for g in points} == points


def test_hand_grading_in_the_formgrader_reaches_export_report_and_feedback(term, formgrader_at, chromium):
    root, _, _ = term
    with formgrader_at(root) as (url, token):
        browser = chromium()
        _grade_by_hand(browser, url, token, root, "ada", ANSWER_POINTS)
        _grade_by_hand(browser, url, token, root, "cy", {FORECAST: 10})  # the flagged cell, looked at
    rows = rows_by_student(root)
    ada, cy = rows["ada"], rows["cy"]
    assert ada.status == "complete" and ada.by_hand == 17 and ada.total == AUTO_POINTS + 17
    assert cy.status == "hand grading pending" and cy.automatic >= 10

    assert jenalab(root, "export").returncode == 0
    generic = {row["student"]: row for row in csv.DictReader((root / "exports" / f"{ASSIGNMENT}_grades.csv").open())}
    assert generic["ada"]["by_hand_of_20"] == "17" and generic["ada"]["total_of_100"] == f"{AUTO_POINTS + 17:g}"
    assert generic["ada"]["answers_graded"] == "4/4" and generic["ada"]["status"] == "complete"
    assert generic["ben"]["late_penalty"] != "0" and generic["ben"]["submitted_at_utc"] == "2026-03-03 09:00"
    assert generic["dee"]["status"] == "missing"
    canvas = {line[3]: line for line in csv.reader((root / "exports" / f"{ASSIGNMENT}_canvas.csv").open())}
    assert canvas["ada"][-1] == f"{AUTO_POINTS + 17:g}"

    assert jenalab(root, "report").returncode == 0
    report = (root / "reports" / f"{ASSIGNMENT}.html").read_text()
    assert "Hand grading: <strong>4 of 12</strong> written answers graded" in report
    assert "17 (4/4)" in report and f'href="../feedback/ada/{ASSIGNMENT}/{ASSIGNMENT}.html"' in report
    assert 'class="sortable"' in report and f'href="../autograded/ada/{ASSIGNMENT}/{NOTEBOOK}"' in report

    assert jenalab(root, "feedback", "--student", "ada").returncode == 0
    page = feedback_page(root, "ada").read_text()
    assert f"Score: {AUTO_POINTS + 17:g} of 100 (automatic {AUTO_POINTS:g} of {AUTO_POINTS:g}, by hand 17 of 20)" in page
    assert "graded by hand: pending" not in page.lower() and "Graded by hand: 4.0 / 5.0" in page


def test_export_fills_a_canvas_gradebook_keeping_its_rows(term):
    root, _, _ = term
    gradebook = root.parent / "canvas_gradebook.csv"
    gradebook.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,LSTM lab (777),Quiz 1 (12)\n"
        "    Points Possible,,,,,100,10\n"
        "\"Lovelace, Ada\",1001,S1,ada,Sec A,,9\n"
        "\"Absent, Dee\",1004,S4,dee,Sec A,55,7\n"
        "\"Other, Zoe\",1099,S9,zoe,Sec B,70,8\n", encoding="utf-8-sig")
    done = jenalab(root, "export", "--canvas", str(gradebook), "--canvas-column", "LSTM lab (777)")
    assert done.returncode == 0, done.stderr
    assert "Not in the Canvas file (no row to fill): ben, cy" in done.stdout
    table = list(csv.reader((root / "exports" / f"{ASSIGNMENT}_canvas.csv").open()))
    assert table[0][-2:] == ["LSTM lab (777)", "Quiz 1 (12)"]
    rows = {line[3]: line for line in table[2:]}
    assert rows["ada"][5] == f"{AUTO_POINTS + 17:g}" and rows["ada"][6] == "9"
    assert rows["dee"][5] == "0"  # no submission
    assert rows["zoe"][5] == "70"  # not ours: kept as Canvas had it
    wrong = root.parent / "not_canvas.csv"
    wrong.write_text("name,score\n")
    refused = jenalab(root, "export", "--canvas", str(wrong))
    assert refused.returncode == 2 and "is not a Canvas gradebook export" in refused.stderr


def test_a_download_that_is_not_a_zip_or_a_course_without_roster_is_explained(term, tmp_path):
    root, _, _ = term
    not_zip = tmp_path / "download.zip"
    not_zip.write_text("<html>session expired</html>")
    done = jenalab(root, "collect", str(not_zip))
    assert done.returncode == 2 and "is not a zip file" in done.stderr
    bare = scratch_course(COURSE, tmp_path / "bare")
    done = jenalab(bare, "collect", str(not_zip))
    assert done.returncode == 2 and "nbgrader db student import" in done.stderr


def test_roster_import_reads_names_and_lms_ids(term):
    root, _, _ = term
    with Gradebook(gradebook_url(root)) as gradebook:
        people = {s.id: (s.first_name, s.last_name, s.lms_user_id) for s in gradebook.students}
    assert people["cy"] == ("Cy", "D'Fect", "1003") and set(people) == {"ada", "ben", "cy", "dee"}
