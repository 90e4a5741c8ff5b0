"""Due dates, extensions and late penalties, kept where nbgrader keeps them.

* The due date is the assignment's in the gradebook (`jenalab due`), as the formgrader shows it.
* An extension is the student's submission's in the gradebook (`jenalab extend`).
* The submission time is nbgrader's own ``submitted/<student>/lstm_jena/timestamp.txt`` (written by
  ``nbgrader collect``, by ``nbgrader zip_collect`` from an LMS download, or by hand), stored in the
  gradebook when the submission is graded.
* The penalty comes from nbgrader's late-submission plugin configured in the course's
  ``nbgrader_config.py`` (``c.AssignLatePenalties.plugin_class``), for example `LatePolicy` below.
  It is computed from the score as it stands (automatic and hand-graded points), whenever the
  grades are reported, exported or turned into feedback, so a hand-graded answer is penalised too.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

from grader_tests.contract import ASSIGNMENT
from jenalab.course import CourseError

DAY = 86400.0


class LatePolicy(LateSubmissionPlugin):
    """A share of the points per started day late, up to a cap; nothing at all after a hard deadline.

    In nbgrader_config.py::

        c.AssignLatePenalties.plugin_class = "jenalab.deadlines.LatePolicy"
        c.LatePolicy.percent_per_day = 10   # of the points earned, per started day late
        c.LatePolicy.max_percent = 50       # at most
        c.LatePolicy.zero_after_days = 7    # later than this: no points (None: no hard deadline)
        c.LatePolicy.grace_minutes = 15     # not late within this
    """

    percent_per_day = Float(0.0, help="share of the points earned lost per started day late, in percent").tag(config=True)
    max_percent = Float(100.0, help="the most a late submission loses, in percent of its points").tag(config=True)
    zero_after_days = Float(None, allow_none=True, help="days late after which nothing counts (None: never)").tag(config=True)
    grace_minutes = Float(0.0, help="minutes after the due date that do not count as late").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        late = max(0.0, total_seconds_late - self.grace_minutes * 60)
        if late == 0:
            return 0.0
        if self.zero_after_days is not None and late > self.zero_after_days * DAY:
            return score
        return score * min(self.max_percent, self.percent_per_day * math.ceil(late / DAY)) / 100

    def describe(self) -> str:
        parts = [f"{self.percent_per_day:g}% of the points per started day late, at most {self.max_percent:g}%"]
        if self.zero_after_days is not None:
            parts.append(f"nothing after {self.zero_after_days:g} days")
        if self.grace_minutes:
            parts.append(f"{self.grace_minutes:g} minutes' grace")
        return "; ".join(parts)


def late_plugin(config):
    """The late-submission plugin the course configures (nbgrader's own default: no penalty)."""
    from nbgrader.preprocessors import AssignLatePenalties

    return AssignLatePenalties(config=config).plugin_class(config=config)


def describe(plugin) -> str:
    if hasattr(plugin, "describe"):
        return plugin.describe()
    method = getattr(plugin, "penalty_method", None)
    return {"none": "no penalty", "zero": "no points when late"}.get(method, type(plugin).__name__)


def parse_time(text: str, timezone: str | None = None) -> dt.datetime:
    """A date and time as an instructor writes it ("2026-12-20 23:59", with or without an offset such as +01:00),
    as naive UTC, the way nbgrader stores times; a time without offset is read in `timezone` (default UTC)."""
    from dateutil import parser, tz

    try:
        when = parser.parse(text)
    except (ValueError, OverflowError) as err:
        raise CourseError(f"{text!r} is not a date and time (write for example 2026-12-20 23:59 or "
                          "2026-12-20T23:59+01:00)") from err
    if when.tzinfo is None:
        zone = tz.gettz(timezone) if timezone else tz.UTC
        if zone is None:
            raise CourseError(f"unknown time zone {timezone!r} (use a name such as Europe/Berlin)")
        when = when.replace(tzinfo=zone)
    return when.astimezone(tz.UTC).replace(tzinfo=None)


def submission_time(root: Path, student: str) -> dt.datetime | None:
    """When the student submitted, from nbgrader's timestamp.txt beside the notebook (naive UTC), if there is one."""
    from nbgrader.utils import parse_utc

    path = root / "submitted" / student / ASSIGNMENT / "timestamp.txt"
    if not path.is_file():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except (ValueError, OverflowError):
        return None


def set_due(gradebook, when: dt.datetime) -> None:
    gradebook.update_or_create_assignment(ASSIGNMENT, duedate=when)


def extend(gradebook, student: str, days: float = 0, hours: float = 0) -> None:
    """Give the student this much more time (replacing an earlier extension; 0 removes it)."""
    gradebook.update_or_create_submission(ASSIGNMENT, student)
    gradebook.grant_extension(ASSIGNMENT, student, days=days, hours=hours)
