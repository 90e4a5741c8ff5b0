"""`pytest grader_tests --submission autograded/<student>/lstm_jena`: the trusted re-check of one
graded submission, from the evidence its hidden cells recorded."""

from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--submission", help="an autograded submission folder (holding evidence/)")


@pytest.fixture(scope="session")
def evidence_dir(request) -> Path:
    folder = request.config.getoption("--submission")
    if not folder:
        pytest.skip("give --submission autograded/<student>/lstm_jena")
    evidence = Path(folder) / "evidence"
    if not evidence.is_dir():
        pytest.fail(f"{folder} holds no evidence/ folder: grade it with `jenalab grade` first")
    return evidence
