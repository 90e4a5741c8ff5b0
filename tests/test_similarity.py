"""Similar work across a class (`jenalab.similarity`), on notebooks as students hand them in: solutions written
independently (bench/similarity/) are not listed; a copy with every name changed, comments rewritten and the
answers reordered is, with its passages; the starter code alone never makes two students similar; and the report
shows the passages as text."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from grader_tests.contract import WRITTEN_ANSWERS
from jenalab.corpus import parse, scratch_course, write_submission
from jenalab.course import submission_path
from jenalab.similarity import ANSWER_THRESHOLD, CODE_THRESHOLD, Pair, class_similarity

COURSE = Path(__file__).resolve().parents[1]
INDEPENDENT = COURSE / "bench" / "similarity"
BLANK = COURSE / "grader_tests" / "submissions" / "blank.py"


def disguise(code: str) -> str:
    """Every name the student chose replaced, comments rewritten, numbers changed: what renaming tools do."""
    taken = {"self", "model", "loader", "loss_fn", "optimizer", "epochs", "scheduler", "patience", "n_features",
             "hidden_size", "num_layers", "x", "MODE", "final_model", "final_history", "train_loader", "val_loader"}
    out = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.NAME and re.fullmatch(r"[a-z]+(_[a-z]+)+", token.string) and token.string not in taken:
            token = token._replace(string="v" + token.string.replace("_", "")[::-1])
        elif token.type == tokenize.COMMENT:
            token = token._replace(string="# my own note")
        elif token.type == tokenize.NUMBER and "." in token.string:
            token = token._replace(string=repr(float(token.string) * 2))
        out.append(token)
    return tokenize.untokenize(out)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Three independent solutions, an edited copy of the first, and two students who handed in the release as is."""
    root = scratch_course(COURSE, tmp_path_factory.mktemp("similarity"))
    for student, name in (("ann", "independent_a"), ("bob", "independent_b"), ("cat", "independent_c"),
                          ("dan", "independent_a")):
        write_submission(parse(INDEPENDENT / f"{name}.py"), root, root, student=student)
    for student in ("eve", "fay"):
        write_submission(parse(BLANK), root, root, student=student)
    path = submission_path(root, "dan")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.get("id") in WRITTEN_ANSWERS:
            sentences = re.split(r"(?<=\.)\s+", cell.source)
            cell.source = " ".join(sentences[1:] + sentences[:1])
        elif cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("locked"):
            cell.source = disguise(cell.source)
    nbformat.write(notebook, path)
    return root


def test_only_the_disguised_copy_is_listed_with_its_passages(course):
    pairs = class_similarity(course)
    assert [(p.first, p.second) for p in pairs] == [("ann", "dan")], pairs
    copy = pairs[0]
    assert copy.code >= CODE_THRESHOLD and copy.answers >= ANSWER_THRESHOLD
    assert copy.passages and all(first.strip() and second.strip() for first, second in copy.passages)
    assert any(first != second for first, second in copy.passages)  # the names differ, the code is the same


def test_the_report_shows_similar_work_as_text(tmp_path):
    from jenalab.report import _similar

    section = _similar([Pair("ann", "dan", 0.9, 0.1, [("x = '<script>alert(1)</script>'", "y = 1")])])
    assert "&lt;script&gt;" in section and "<script>" not in section
    assert "ann" in section and "90%" in section and "never a penalty" in section
    assert "No pair reaches the threshold" in _similar([])
