"""Taking in a zip of submissions downloaded from an LMS, with nbgrader's ``zip_collect``.

`jenalab collect DOWNLOAD.zip` puts the zip where ``nbgrader zip_collect`` looks
(``downloaded/lstm_jena/archive/``) and runs it with the two plugins below: `TimedExtractor`
unpacks the archives keeping each file's date from the zip, and `RosterCollector` reads who
handed in a file from its name, as Canvas and Moodle name their downloads, and matches that person
to the course roster (the gradebook's students, imported with ``nbgrader db student import``).
nbgrader then copies each notebook to ``submitted/<student>/lstm_jena/lstm_jena.ipynb`` with its
``timestamp.txt`` (the newest file wins when a student handed in several); files that match no one
on the roster are listed and left alone.

Names:

* Canvas: ``<lastfirst>[_late]_<user id>_<submission id>_<file name>`` (``doejane_late_1234_5678_lstm_jena.ipynb``);
  matched by the login as the student id, by the Canvas user id as the student's ``lms_user_id``, or by
  the last and first name run together;
* Moodle: ``<Full Name>_<id>_assignsubmission_file_<file name>``, or the file inside a folder of that
  name; matched by the full name, or by the id as ``lms_user_id``.

Zip files keep local times without a time zone: ``--zip-timezone`` tells how to read them (UTC by
default; use the LMS server's zone).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Unicode

from grader_tests.contract import ASSIGNMENT, NOTEBOOK

CANVAS = re.compile(r"(?P<login>[a-z0-9]+)(?:_late)?_(?P<user_id>\d+)_(?P<submission_id>\d+)_(?P<file>.+)", re.I)
MOODLE = re.compile(r"(?P<fullname>[^_/]+)_(?P<user_id>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.*)")


def _plain(text: str) -> str:
    """Lower case letters and digits only, accents dropped: 'Doe, Jane-Ann' -> 'doejaneann'."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", folded)


@dataclass(frozen=True)
class Person:
    id: str
    first_name: str
    last_name: str
    lms_user_id: str


def roster(db_url: str) -> list[Person]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        return [Person(s.id, s.first_name or "", s.last_name or "", s.lms_user_id or "") for s in gradebook.students]


def identify(path: str, people: list[Person]) -> str | None:
    """The roster id of whoever handed in this file (its name, or its folder's, as the LMS wrote it), or None."""
    name = os.path.basename(path)
    folder = os.path.basename(os.path.dirname(path)) + "_"  # Moodle: the file inside the student's folder
    for text in (name, folder + name):
        if match := CANVAS.fullmatch(text):
            login, user_id = match["login"].lower(), match["user_id"]
            found = ([p for p in people if p.id.lower() == login] or [p for p in people if p.lms_user_id == user_id]
                     or [p for p in people if _plain(p.last_name + p.first_name) == _plain(login)])
            return found[0].id if len(found) == 1 else None
        if match := MOODLE.fullmatch(text):
            full, user_id = _plain(match["fullname"]), match["user_id"]
            found = ([p for p in people if p.lms_user_id == user_id]
                     or [p for p in people if full in (_plain(p.first_name + p.last_name), _plain(p.last_name + p.first_name))])
            return found[0].id if len(found) == 1 else None
    return None


class TimedExtractor(ExtractorPlugin):
    """Unpacks each zip in the archive folder (and zips inside it), giving every file the date the zip records."""

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for root, _, files in os.walk(archive_path):
            for name in files:
                source = os.path.join(root, name)
                target = os.path.join(extracted_path, os.path.relpath(root, archive_path))
                os.makedirs(target, exist_ok=True)
                if zipfile.is_zipfile(source):
                    _unzip(source, os.path.join(target, os.path.splitext(name)[0]))
                else:
                    shutil.copy2(source, target)


def _unzip(path: str, target: str) -> None:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            # Only the member's own name: a zip cannot write outside the extraction folder.
            parts = [p for p in Path(member.filename).parts if p not in ("", ".", "..", "/")]
            destination = os.path.join(target, *parts)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            with archive.open(member) as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst)
            stamp = dt.datetime(*member.date_time).timestamp()
            os.utime(destination, (stamp, stamp))
            if zipfile.is_zipfile(destination):
                _unzip(destination, os.path.splitext(destination)[0])
                os.remove(destination)


class RosterCollector(FileNameCollectorPlugin):
    """Matches each notebook in the download to a student on the roster; its time is the file's date from the zip."""

    zip_timezone = Unicode("UTC", help="time zone of the times in the zip (those of the LMS server)").tag(config=True)

    def collect(self, submitted_file: str) -> dict | None:
        if os.path.splitext(submitted_file)[1] not in self.valid_ext:
            return None
        student = identify(submitted_file, roster(self.parent.coursedir.db_url))
        if student is None:
            self.log.warning("No student on the roster for %s", submitted_file)
            return None
        from dateutil import tz

        local = dt.datetime.fromtimestamp(os.path.getmtime(submitted_file))
        when = local.replace(tzinfo=tz.gettz(self.zip_timezone) or tz.UTC)
        return {"student_id": student, "file_id": NOTEBOOK, "timestamp": when.isoformat()}


@dataclass
class Collected:
    students: list[str]  # collected into submitted/
    unmatched: list[str]  # notebooks in the download that match no one on the roster


def collect_zip(root: Path, download: Path, zip_timezone: str = "UTC") -> Collected:
    """Take in an LMS download with nbgrader zip_collect; what was collected, and what matched no one."""
    from jenalab.course import CourseError, gradebook_url, run_nbgrader

    people = roster(gradebook_url(root))
    if not people:
        raise CourseError("The gradebook has no students to match the download to. Import the roster first: "
                          "nbgrader db student import students.csv (columns id, first_name, last_name, email, lms_user_id).")
    if not zipfile.is_zipfile(download):
        raise CourseError(f"{download} is not a zip file (download the submissions from the LMS as one zip).")
    archive = root / "downloaded" / ASSIGNMENT / "archive"
    extracted = root / "downloaded" / ASSIGNMENT / "extracted"
    for folder in (archive, extracted):
        shutil.rmtree(folder, ignore_errors=True)
    archive.mkdir(parents=True)
    shutil.copy(download, archive / download.name)
    before = {p: p.stat().st_mtime for p in (root / "submitted").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")}
    run_nbgrader("zip_collect", ASSIGNMENT, "--force", "--extractor=jenalab.lms.TimedExtractor",
                 "--collector=jenalab.lms.RosterCollector", f"--RosterCollector.zip_timezone={zip_timezone}", root=root)
    notebooks = sorted(str(p) for p in extracted.rglob("*.ipynb"))
    unmatched = [os.path.relpath(p, extracted) for p in notebooks if identify(p, people) is None]
    changed = sorted(p.parts[-3] for p in (root / "submitted").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")
                     if before.get(p) != p.stat().st_mtime)
    return Collected(changed, unmatched)
