"""pytest plugin for re-checking a graded submission by hand: the sandboxed evaluator as a fixture.

    python -m pytest -p jenalab.recheck grader_tests --submission autograded/<student>/lstm_jena
"""

import pytest


@pytest.fixture(scope="session")
def evaluator():
    from jenalab.evaluator import evaluate

    return evaluate
