"""nbgrader's formgrader on the graded corpus, in a real Jupyter server and headless Chromium: what an instructor
opens to grade by hand. Student output in a graded notebook runs no script in the instructor's session."""

from __future__ import annotations

import pytest
from nbgrader.api import Gradebook

from grader_tests.contract import ASSIGNMENT, NOTEBOOK_ID
from jenalab.course import gradebook_url


@pytest.fixture(scope="module")
def formgrader(graded, formgrader_at):
    """A Jupyter server with nbgrader's formgrader serving the graded corpus course; yields (url, token, root)."""
    root, _, _ = graded
    with formgrader_at(root) as (url, token):
        yield url, token, root


def submission_id(root, student: str) -> str:
    with Gradebook(gradebook_url(root)) as gradebook:
        return gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student).id


def test_student_script_never_runs_in_the_formgrader(formgrader, chromium):
    """harmful_script_output, opened for grading: the page shows its outputs and written answer, and none of the script
    in them runs in the instructor's session."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    url, token, root = formgrader
    browser = chromium()
    browser.get(f"{url}/formgrader?token={token}")
    browser.get(f"{url}/formgrader/submissions/{submission_id(root, 'harmful_script_output')}/")
    WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".nbgrader_cell")))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Gates decide how much passes." in body and "bold" in body
    assert not browser.title.startswith("pwned"), browser.title
    assert browser.execute_script("return document.title") == browser.title
