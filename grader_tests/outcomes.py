"""What judging a check can end in. A leaf: it imports nothing of the grader."""

from __future__ import annotations

from dataclasses import dataclass


class CheckFailed(AssertionError):
    """A check failed: the message is for the student (what was expected, what was found, a hint); the
    flag, if any, tells an instructor why the submission deserves a look."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


class Unusable(ValueError):
    """A record is not what its collector makes (missing parts, other types or shapes): written by
    something else than the hidden check."""


@dataclass(frozen=True)
class Partial:
    """A partial-credit outcome: the fraction of the points, the figures for the student, a flag or None."""

    fraction: float
    message: str
    flag: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The trusted verdict on one graded cell."""

    points: float
    message: str  # for the student: why points were lost, or the figures of a partial-credit check
    recorded: bool  # whether the hidden check left a record (False: it did not run, or not to the end)
    flag: str | None = None  # for the instructor: why this submission deserves a look
