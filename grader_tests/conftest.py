"""`pytest -p jenalab.recheck grader_tests --submission autograded/<student>/lstm_jena`: the trusted verdicts of one
graded submission, from the records its hidden cells left. The plugin `jenalab.recheck` gives the sandboxed
evaluator that runs the exported models (this package cannot start a sandbox itself)."""

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


@pytest.fixture(scope="session")
def verdicts(request, evidence_dir):
    from grader_tests.thresholds import load_thresholds
    from grader_tests.verdicts import judge_submission

    try:
        evaluate = request.getfixturevalue("evaluator")
    except pytest.FixtureLookupError:
        pytest.fail("the exported models need the sandboxed evaluator: run pytest with -p jenalab.recheck")
    return judge_submission(evidence_dir, load_thresholds(), evaluate)
