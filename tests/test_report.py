"""The class report and the progress reporter, without grading anything.

A ClassRun is built from synthetic results (full marks, partial credit, zeros with a repeated
message, flags, a notebook error, an infrastructure failure, a message that quotes a <script> tag);
the report is written to tmp_path and read in headless Chromium through Selenium (Debian's chromium
and chromedriver). A screenshot is kept in tests/screenshots/ (gitignored). Without chromium or
chromedriver the browser test is skipped, or fails when CI is set.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from grader_tests.contract import CELL_OF_CHECK, GRADED_CELLS
from jenalab.course import feedback_page
from jenalab.gradesheet import COMPLETE, MISSING, PENDING, Standing
from jenalab.progress import Progress
from jenalab.report import MESSAGE_CHARS, SORTING, write_class_report
from jenalab.results import ClassRun, Infrastructure, Result
from jenalab.similarity import Pair

FORECAST, LOSS, FIT, MODEL, TRAIN, EVALUATE = (CELL_OF_CHECK[check] for check in
                                              ("forecast", "loss", "fit", "model", "train_one_epoch", "evaluate"))

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

POINTS = {cell.grade_id: float(cell.points) for cell in GRADED_CELLS}
LOSS_MESSAGE = ("choose_loss should return a regression loss such as nn.MSELoss or nn.L1Loss; found CrossEntropyLoss, "
                "which is for class labels.")
SCRIPT_MESSAGE = "WeatherLSTM raised ValueError: <script>window.pwned = true; document.title = 'pwned'</script>"
LONG_MESSAGE = "train_one_epoch raised RuntimeError: " + "shape mismatch in a long printed tensor; " * 30
NO_NOTEBOOK = "no lstm_jena.ipynb in submitted/hal/lstm_jena/"
FLAG = "test_forecast: implausibly good forecast: MAE ratio 0.412 is below 0.700, far better than the reference"
THRESHOLD_WARNING = "thresholds were calibrated on other data (different sha256)"
INFRA = Infrastructure("pat", "worker process 4242 on node-3 has no usable Jena data file (no file at /data/jena.zip)",
                       "process 4242 on node-3")


def _result(student: str, seconds: float, lost: dict[str, tuple[float, str]] | None = None, **fields) -> Result:
    """Full marks except the cells in `lost` (cell -> (points, message))."""
    lost = lost or {}
    return Result(student, "0" * 64, scores={c: lost.get(c, (p,))[0] for c, p in POINTS.items()},
                  max_scores=dict(POINTS), messages={c: message for c, (_, message) in lost.items()},
                  seconds=seconds, worker="process 17 on grader-1", graded_at="2025-03-01T09:30:00+00:00", **fields)


def _forecast(points: float, ratio: float) -> dict:
    return {FORECAST: (points, f"forecast MAE ratio {ratio} earns {points:g} of 30 points (full credit: 0.90)")}


def class_run() -> ClassRun:
    zero_loss = {LOSS: (0.0, LOSS_MESSAGE)}
    results = [
        _result("ada", 61.2, {FORECAST: (30.0, "forecast MAE ratio 0.52 earns 30 of 30 points")}),
        _result("bo", 58.0),
        _result("cy", 70.4, _forecast(15.0, 0.93)),
        _result("dee", 66.1, _forecast(21.0, 0.91)),
        _result("eli", 64.0, zero_loss),
        _result("fay", 63.5, zero_loss),
        _result("gus", 62.9, {**zero_loss, FIT: (3.0, "fit should stop early when the validation loss rises.")}),
        _result("hal", 0.0, {c: (0.0, "") for c in POINTS}, error=NO_NOTEBOOK),
        _result("ivy", 45.3, flags=[FLAG, "suspicious code: reads the data file itself"]),
        _result("jo", 51.7, {MODEL: (0.0, SCRIPT_MESSAGE)}),
        _result("kai", 612.4, {TRAIN: (0.0, LONG_MESSAGE), FORECAST: (0.0, "")},
                error="a cell ran past the time limit", flags=["a cell ran past the time limit"]),
        _result("lu", 59.8, {EVALUATE: (2.0, "evaluate should not compute gradients (use torch.no_grad()).")}),
    ]
    graded_now = [r.student for r in results if r.student != "bo"]  # bo's grade is from an earlier run
    return ClassRun(results, [INFRA], graded_now, threshold_warning=THRESHOLD_WARNING)


def standings() -> list[Standing]:
    return [Standing("ada", "Ada", "Lovelace", status=COMPLETE, automatic=80.0, by_hand=17.0, answers_graded=4),
            Standing("bo", status=PENDING, automatic=72.0, by_hand=5.0, answers_graded=1, penalty=7.7),
            Standing("cy", status=PENDING, automatic=9.0),
            Standing("zed", "Zed", "Nobody", status=MISSING)]


SIMILAR = [Pair("eli", "fay", 0.93, 0.12, [("total = 0.0  # <b>mine</b>", "acc = 0.0  # mine")])]


@pytest.fixture
def report(tmp_path) -> Path:
    page = feedback_page(tmp_path, "ada")  # ada's page exists: the table links it
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    return write_class_report(tmp_path, class_run(), wall_seconds=431.0, standings=standings(), similar=SIMILAR)


@pytest.fixture
def browser(chromium):
    return chromium()


def _rows(driver, section: str) -> list[list[str]]:
    """The text of every body cell of the tables of a report section, row by row."""
    from selenium.webdriver.common.by import By

    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{section} tbody tr")]


def test_report_file_is_self_contained_and_escaped(report):
    assert report.name == "lstm_jena.html" and report.parent.name == "reports"
    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "nothing is loaded from the network"
    assert page.count("<script") == 1 and f"<script>{SORTING}</script>" in page, "no script but the table sorting"
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", policy) and "unsafe-inline" not in policy.split("style-src")[0]
    assert "&lt;script&gt;window.pwned" in page and "&lt;b&gt;mine&lt;/b&gt;" in page


def test_report_in_browser(report, browser):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    assert browser.title == "lstm_jena: class report", "the <script> in a message did not run"
    assert browser.execute_script("return window.pwned") is None

    header = browser.find_element(By.TAG_NAME, "main").text
    assert "13 submission(s): 12 graded (11 in this run, 1 earlier), 1 NOT graded" in header
    assert f"Forecast points may be unfair: {THRESHOLD_WARNING}." in header

    ungraded = browser.find_element(By.ID, "ungraded")
    assert "1 submission(s) NOT graded" in ungraded.text and "the next jenalab grade grades them" in ungraded.text
    assert _rows(browser, "ungraded") == [[INFRA.student, INFRA.worker, INFRA.message]]

    figure = browser.find_element(By.CSS_SELECTOR, "#totals img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", figure) > 0
    assert figure.size["width"] > 300 and figure.size["height"] > 100, "the histogram is drawn at a readable size"

    rates = {row[0]: row[1:5] for row in _rows(browser, "pass-rates")}
    assert list(rates) == [cell.grade_id for cell in GRADED_CELLS], "one row per graded cell, in notebook order"
    assert rates[LOSS] == ["10", "8 (67%)", "0 (0%)", "4 (33%)"]  # eli, fay, gus and hal (no notebook)
    assert rates[FORECAST] == ["30", "8 (67%)", "2 (17%)", "2 (17%)"]

    messages = _rows(browser, "messages")
    assert not any("earns 30 of 30" in row[2] for row in messages), "only messages of lost points are listed"
    assert [LOSS, "3", LOSS_MESSAGE] in messages, "identical messages are grouped with their count"
    assert [MODEL, "1", SCRIPT_MESSAGE] in messages, "a message with markup is shown as text"
    cut = next(row[2] for row in messages if row[2].startswith("train_one_epoch raised"))
    assert len(cut) <= MESSAGE_CHARS and cut.endswith("…"), "a long message is cut"

    flagged = {row[0]: row for row in _rows(browser, "flagged")}
    assert set(flagged) == {"ivy", "kai"}
    assert FLAG in flagged["ivy"][3] and "suspicious code: reads the data file itself" in flagged["ivy"][3]
    assert ["hal", "0", "this run", NO_NOTEBOOK] in _rows(browser, "notebook-errors")

    timing = _rows(browser, "timing")
    assert [row[0] for row in timing[:2]] == ["kai", "cy"], "slowest first"
    assert ["bo", "58.0", "process 17 on grader-1", "earlier, 2025-03-01 09:30 UTC"] in timing
    summary = browser.find_element(By.CSS_SELECTOR, "#timing p").text
    assert "This run graded 11 submission(s): median 62.9 s" in summary and "7 min of wall time" in summary

    students = _rows(browser, "students")
    assert [row[0] for row in students] == ["ada", "bo", "cy", "zed"]
    assert students[0][2:7] == ["complete", "80", "17 (4/4)", "", "97"] and "feedback" in students[0][9]
    assert students[1][5:7] == ["7.7", "69.3"] and students[3][2] == "missing" and students[3][6] == ""
    assert "Hand grading: 5 of 12 written answers graded; 2 submission(s) still wait for a person." in header
    total = browser.find_elements(By.CSS_SELECTOR, "#students th")[6]
    total.click()  # the page's own script sorts, allowed by its hash
    assert [row[0] for row in _rows(browser, "students")][:3] == ["cy", "bo", "ada"], "sorted by total, rising"
    total.click()
    assert [row[0] for row in _rows(browser, "students")][:3] == ["ada", "bo", "cy"], "and falling"

    similar = browser.find_element(By.ID, "similar")
    assert _rows(browser, "similar")[0][:4] == ["eli", "fay", "93%", "12%"] and "never a penalty" in similar.text
    similar.find_element(By.TAG_NAME, "summary").click()
    assert "total = 0.0 # <b>mine</b>" in similar.text.replace("  ", " ") and "acc = 0.0" in similar.text

    SCREENSHOTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, height + 200)  # the whole page in one picture
    browser.save_screenshot(str(SCREENSHOTS / "class_report.png"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1280, "no sideways scrolling"


def test_report_when_nothing_was_graded(tmp_path):
    page = write_class_report(tmp_path, ClassRun(infrastructure=[INFRA])).read_text()
    assert "1 submission(s) NOT graded" in page and "<img" not in page


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_plain_lines():
    stream = io.StringIO()
    with Progress(3, stream) as progress:
        for student in ("ada", "bo", "cy"):
            progress.done(f"  {student:<6} 80 / 80  (61 s)")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[1/3\] ada    80 / 80  \(61 s\) \(ETA \d+ s\)", lines[0]), lines[0]
    assert re.fullmatch(r"\[3/3\] cy .* \(all done in \d+ s\)", lines[2]), lines[2]


def test_progress_bar_on_a_terminal():
    stream = _Terminal()
    with Progress(3, stream) as progress:
        for student in ("ada", "bo", "cy"):
            progress.done(f"{student} 80 / 80")
    out = stream.getvalue()
    shown = out.replace("\r", "\n").splitlines()
    assert all(f"{student} 80 / 80" in shown for student in ("ada", "bo", "cy")), "each line above the bar, whole"
    assert re.search(r"Grading: +100%.*\| 3/3 \[\d\d:\d\d<\d\d:\d\d", out), "counts, elapsed time and ETA"
    assert out.endswith("\n"), "the bar is closed"
