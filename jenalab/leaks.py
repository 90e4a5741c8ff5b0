"""Recognise grader and solution text in what a student's notebook printed.

A notebook can print the hidden cells (IPython keeps them in ``In`` once they ran), the source of
the grader's checks (``inspect.getsource``) or files it can read. Such text is found by its
fingerprints: runs of ``RUN`` consecutive names and numbers of the secret material (the instructor
notebook, the grader's code without its messages, the corpus of graded variants) that appear
neither in what the student was given (the release, the student-facing code) nor in the student's
own notebook. Formatting, quoting and escapes do not hide a run; the check messages written for
students are not secret (string literals of the grader's code are left out).
"""

from __future__ import annotations

import hashlib
import io
import re
import tokenize
from functools import lru_cache
from pathlib import Path

import nbformat

import grader_tests
import jena_weather
from grader_tests.contract import ASSIGNMENT, NOTEBOOK

RUN = 8  # tokens per fingerprint: long enough that ordinary output never matches by chance
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
ESCAPES = re.compile(r"\\[ntr'\"\\]")
REDACTED = "[output removed: it contained grader or solution code, which feedback never shows]"


def _runs(tokens: list[str]) -> set[int]:
    return {hash(" ".join(tokens[i:i + RUN])) for i in range(len(tokens) - RUN + 1)}


def text_runs(text: str) -> set[int]:
    """Fingerprints of free text, e.g. an output (escape sequences such as a repr's \\n count as spaces)."""
    return _runs(WORD.findall(ESCAPES.sub(" ", text)))


def code_runs(source: str) -> set[int]:
    """Fingerprints of Python code without its string literals and comments."""
    try:
        tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type in (tokenize.NAME, tokenize.NUMBER)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text_runs(source)
    return _runs([word for t in tokens for word in WORD.findall(t)])


def notebook_runs(path: Path) -> set[int]:
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # unreadable: nothing of it can be public
        return set()
    runs: set[int] = set()
    for cell in cells:
        runs |= text_runs(cell.source) | (code_runs(cell.source) if cell.cell_type == "code" else set())
    return runs


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if "__pycache__" not in p.parts)


@lru_cache(maxsize=8)
def _secret_runs(course: Path, stamp: tuple) -> frozenset[int]:
    runs = notebook_runs(course / "source" / ASSIGNMENT / NOTEBOOK)
    for path in _files(Path(grader_tests.__file__).parent, "*.py") + _files(course / "grader_tests" / "submissions", "*.py"):
        runs |= code_runs(path.read_text())
    public = notebook_runs(course / "release" / ASSIGNMENT / NOTEBOOK)
    for path in _files(Path(jena_weather.__file__).parent, "*.py"):
        public |= code_runs(path.read_text()) | text_runs(path.read_text())
    return frozenset(runs - public)


def secret_runs(course: Path) -> frozenset[int]:
    """The course's secret fingerprints (cached while the source and release notebooks are unchanged)."""
    stamp = tuple(_digest(course / folder / ASSIGNMENT / NOTEBOOK) for folder in ("source", "release"))
    return _secret_runs(Path(course).resolve(), stamp)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


class Redactor:
    """Tells whether a text leaks secret material that this student's own notebook does not hold."""

    def __init__(self, course: Path, student_notebook: Path):
        self.secret = secret_runs(course) - notebook_runs(student_notebook)

    def leaks(self, text: str) -> bool:
        return not self.secret.isdisjoint(text_runs(text))

    def clean(self, text: str) -> str:
        return REDACTED if self.leaks(text) else text
