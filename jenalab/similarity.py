"""Similar work across a class: pairs of submissions whose own code or written answers overlap, with the
passages side by side, for a person to look at (never a penalty).

It uses copydetect, which fingerprints documents by winnowing as MOSS does. A student's code is every
code cell they could edit (solution and exploration cells), compared with names and literals
normalised by copydetect's Python filter, so renaming variables hides nothing. What everyone is given
or expected to write does not count: the release's code and the instructor's solution are
boilerplate (their fingerprints are ignored), so two students who both wrote the textbook training
loop are not a match. The written answers are compared as text, in longer passages.

A pair is listed when the overlap covers at least `CODE_THRESHOLD` of either student's code, or
`ANSWER_THRESHOLD` of either's written answers. The thresholds come from six solutions written
independently of each other and of the reference, and from edited copies of them (every name
renamed, comments and numbers changed, sentences reordered and one dropped), measured by
``bench/bench_similarity.py``: independent pairs overlap by at most 0.53 of their code and 0.22 of
their answers; edited copies by at least 0.95 and 0.98. The code of this lab is short and its
training loop canonical, so independent code overlaps more than prose does.
"""

from __future__ import annotations

import io
import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np

from grader_tests.contract import WRITTEN_ANSWERS

# copydetect's k (characters of filtered code or text below which a match is noise) and the length always found
CODE_NOISE, CODE_GUARANTEE = 20, 25
ANSWER_NOISE, ANSWER_GUARANTEE = 40, 45
CODE_THRESHOLD = 0.75  # share of either student's code that overlaps
ANSWER_THRESHOLD = 0.5  # share of either student's written answers
CONTEXT = 400  # characters of a passage shown in the report
MIN_PRINTS = 10  # fingerprints a student's own code (or answers) needs to be compared at all
PREFILTER = 1 / 3  # of a threshold: bench/bench_similarity.py shows the margin for edited copies


@dataclass
class Work:
    student: str
    code: str
    answers: str


@dataclass
class Pair:
    first: str
    second: str
    code: float  # the larger share of either student's code that the other's overlaps
    answers: float
    passages: list[tuple[str, str]]  # matching passages, first's and second's

    @property
    def score(self) -> float:
        return max(self.code, self.answers)


def student_work(student: str, notebook_path: Path, release: nbformat.NotebookNode) -> Work | None:
    """What the student wrote: their code cells and written answers that are not the release's word for word."""
    try:
        cells = nbformat.read(notebook_path, as_version=4).cells
    except Exception:  # an unreadable notebook has nothing to compare
        return None
    given = {c.source.strip() for c in release.cells}  # a cell left as released is not the student's work
    code = [c.source for c in cells if c.cell_type == "code" and c.source.strip() not in given]
    answers = [c.source for c in cells if c.get("id") in WRITTEN_ANSWERS and c.source.strip() not in given]
    return Work(student, "\n\n".join(code), "\n\n".join(answers))


@dataclass
class Provided:
    """What no student is compared on: the release's code cells and the instructor's solutions; the answer cells'
    placeholders."""

    code: str
    answers: str = ""

    @classmethod
    def of(cls, root: Path) -> Provided:
        from jenalab.course import release_notebook, solved_cells

        release = nbformat.read(release_notebook(root), as_version=4)
        code = [c.source for c in release.cells if c.cell_type == "code"] + list(solved_cells(root, True).values())
        answers = [c.source for c in release.cells if c.get("id") in WRITTEN_ANSWERS]
        return cls("\n\n".join(code), "\n\n".join(answers))


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def _fingerprint(text: str, kind: str, boilerplate=()):
    """copydetect's fingerprint of a text; shorter than `MIN_PRINTS` fingerprints, it has none (too little to compare)."""
    import copydetect.utils
    from copydetect import CodeFingerprint

    noise, guarantee = (CODE_NOISE, CODE_GUARANTEE) if kind == "code" else (ANSWER_NOISE, ANSWER_GUARANTEE)
    name = "code.py" if kind == "code" else "answers.txt"  # the .py name turns on copydetect's Python filter
    # copydetect hashes with Python's hash(), which changes from process to process: a fixed hash gives the
    # same fingerprints, and so the same report, on every run.
    copydetect.utils.hash = _stable_hash
    try:
        printed = CodeFingerprint(name, noise, guarantee - noise + 1, boilerplate=list(boilerplate),
                                  filter=kind == "code", fp=io.StringIO(text))
    finally:
        del copydetect.utils.hash
    if len(printed.hashes) < MIN_PRINTS:
        printed.hashes, printed.hash_idx = set(), {}
    return printed


def _passages(first, second, slices) -> list[tuple[str, str]]:
    """The longest matching passages of each (copydetect gives the same number of slices on both sides)."""
    one, two = slices
    if len(one) == 0 or len(two) == 0:  # nothing in common
        return []
    spans = sorted(range(len(one[0])), key=lambda i: one[1][i] - one[0][i], reverse=True)[:3]
    return [(first.raw_code[one[0][i]:one[1][i]][:CONTEXT], second.raw_code[two[0][i]:two[1][i]][:CONTEXT])
            for i in spans if i < len(two[0])]


def _may_overlap(first: np.ndarray, second: np.ndarray, threshold: float) -> bool:
    """A quick look before copydetect's comparison: a pair that shares too few fingerprints cannot reach the threshold."""
    smaller = min(len(first), len(second))
    return smaller > 0 and len(np.intersect1d(first, second, assume_unique=True)) >= PREFILTER * threshold * smaller


def similar_pairs(works: list[Work], provided: Provided, code_threshold: float = CODE_THRESHOLD,
                  answer_threshold: float = ANSWER_THRESHOLD) -> list[Pair]:
    """The pairs at or above either threshold, most similar first."""
    from copydetect import compare_files

    code_boilerplate = _fingerprint(provided.code, "code").hashes
    answer_boilerplate = _fingerprint(provided.answers, "answers").hashes
    code = [_fingerprint(w.code, "code", code_boilerplate) for w in works]
    answers = [_fingerprint(w.answers, "answers", answer_boilerplate) for w in works]
    hashes = [tuple(np.sort(np.fromiter(f.hashes, dtype=np.int64, count=len(f.hashes))) for f in (c, a))
              for c, a in zip(code, answers)]
    pairs = []
    for i, j in itertools.combinations(range(len(works)), 2):
        if not (_may_overlap(hashes[i][0], hashes[j][0], code_threshold)
                or _may_overlap(hashes[i][1], hashes[j][1], answer_threshold)):
            continue
        _, code_shares, code_slices = compare_files(code[i], code[j])
        _, answer_shares, answer_slices = compare_files(answers[i], answers[j])
        pair = Pair(works[i].student, works[j].student, float(max(code_shares)), float(max(answer_shares)), [])
        if pair.code >= code_threshold or pair.answers >= answer_threshold:
            pair.passages = (_passages(code[i], code[j], code_slices) if pair.code >= code_threshold
                             else _passages(answers[i], answers[j], answer_slices))
            pairs.append(pair)
    return sorted(pairs, key=lambda p: p.score, reverse=True)


def class_similarity(root: Path) -> list[Pair]:
    """The similar pairs among every submission of the course folder."""
    from jenalab.course import release_notebook, students_of, submission_path

    release = nbformat.read(release_notebook(root), as_version=4)
    works = [w for s in students_of(root) if (w := student_work(s, submission_path(root, s), release)) is not None]
    return similar_pairs(works, Provided.of(root))
