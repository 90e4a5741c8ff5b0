"""What grading ends in, as plain data: one submission's result, a worker's outcome, a run's summary.

A leaf: the worker, the store, grading a class and the class report all import these types, and
this module imports nothing of jenalab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader_tests.contract import GRADED


@dataclass
class Result:
    """One student's grading outcome, as stored in autograded/<student>/lstm_jena/grading.json."""

    student: str
    submission_sha256: str | None
    grader_version: str = ""  # fingerprint of the checks, thresholds and hidden cells that graded it
    scores: dict[str, float] = field(default_factory=dict)  # graded test cell -> points awarded
    max_scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # graded test cell -> what the student lost points for
    kernel_scores: dict[str, float | None] = field(default_factory=dict)  # as nbgrader scored them in the kernel
    flags: list[str] = field(default_factory=list)  # reasons for an instructor to look
    error: str | None = None  # why nothing of the notebook could run (no notebook, not a notebook)
    events: list[str] = field(default_factory=list)  # what stopped or cut the notebook's run (time limits, a dead kernel)
    seconds: float = 0.0
    worker: str = ""
    graded_at: str = ""

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())

    @property
    def reason(self) -> str:
        position = {cell: i for i, cell in enumerate(GRADED)}
        in_notebook_order = sorted(self.messages, key=lambda cell: position.get(cell, len(position)))
        lost = [f"{cell}: {self.messages[cell]}" for cell in in_notebook_order
                if self.scores.get(cell, 0) < self.max_scores.get(cell, 0)]
        return self.error or "; ".join(self.events + lost) or "all automatic checks passed"


@dataclass
class Outcome:
    """A graded submission as a worker returns it: plain data, nothing written anywhere yet."""

    result: Result
    notebook: str | None  # the autograded notebook (None: nothing ran)
    evidence: dict[str, bytes] = field(default_factory=dict)
    feedback: str | None = None  # the student's feedback page (HTML)


@dataclass
class Infrastructure:
    """The grading machinery failed for this submission: it stays ungraded."""

    student: str
    message: str
    worker: str = ""


@dataclass
class ClassRun:
    """What one `jenalab grade` run ends with."""

    results: list[Result] = field(default_factory=list)  # every requested student that has a grade
    infrastructure: list[Infrastructure] = field(default_factory=list)  # ungraded: the grader failed
    graded_now: list[str] = field(default_factory=list)
    threshold_warning: str | None = None
