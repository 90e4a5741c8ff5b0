"""nbgrader's Execute preprocessor, sealed: what the student's kernel may see and when, and how a
notebook's run ends whatever the notebook does.

It runs in the ``nbgrader autograde`` process, outside the sandbox, on a folder the grading worker
prepared (``SealedExecute.sealed_dir``, laid out by ``SealedFolder``):

* ``inbox/`` (read-only in the kernel): what a hidden check is handed, written only when its cell
  starts and removed when it ends;
* ``evidence/`` (never in the kernel's reach): what each hidden check recorded. A check publishes
  its record as display data of its own type; this preprocessor takes it out of the graded cell's
  outputs, so nothing the kernel writes to a file counts, and a record anywhere else is dropped;
* ``run.json``: how the run went, for the worker: whether the kernel started and any student code
  ran, cells that ran past their time limit, the cell in which the kernel died, cells not run, and
  the state of each check's record;
* ``kernels/``: the sandbox kernelspec of this submission, the only one the kernel is started from.

Every output, and the raw HTML of the student's markdown cells, is made inert (``jenalab.inert``)
before nbgrader stores the notebook. A cell that
runs past its time limit is interrupted and the next cell runs; the whole notebook has a time
budget, after which the remaining cells are not run; a kernel that dies or does not stop after
an interrupt ends the run. In every case the notebook comes back with an error output under the
cell concerned, so nbgrader stores it and grading goes on: these are the student's outcomes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from grader_tests.contract import GRADED
from grader_tests.evidence import MAX_RECORD_BYTES, RECORD_MIME
from jenalab.inert import clean_markdown, inert_outputs

RECORD_FILE = re.compile(r"[a-z_]+(-[a-z0-9_]+)?\.(npz|pt2)")  # names a record may give its files


@dataclass(frozen=True)
class SealedFolder:
    """Where one submission's grading keeps what crosses the kernel's boundary."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def run_record(self) -> Path:
        return self.root / "run.json"

    @property
    def pending(self) -> Path:
        """What the inbox gets when a hidden check starts: ``<pending>/<check>/*`` (grader only)."""
        return self.root / "pending"

    def prepare(self) -> None:
        for folder in (self.inbox, self.evidence, self.pending):
            folder.mkdir(parents=True)
        self.root.chmod(0o711)  # without a mount namespace the kernel must still reach its inbox
        self.inbox.chmod(0o755)
        self.pending.chmod(0o700)

    def read_run(self) -> dict:
        return json.loads(self.run_record.read_text()) if self.run_record.is_file() else {}


def _cell_name(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or "?"


def _error(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SealedExecute(Execute):
    sealed_dir = Unicode(help="folder prepared by the grading worker (see jenalab.sealed)").tag(config=True)
    notebook_timeout = Integer(None, allow_none=True, help="seconds for the whole notebook, after which the remaining "
                               "cells are not run (None: no limit); set by the grading worker").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.on_cell_execute = self._before_cell  # nbclient's hook, called before each code cell
        self.timeout_func = self._cell_timeout
        self.iopub_timeout = 10  # after an interrupt, the seconds a kernel gets to say it stopped

    @property
    def _folder(self) -> SealedFolder:
        return SealedFolder(Path(self.sealed_dir))

    def create_kernel_manager(self):
        """The kernel comes from this submission's own kernelspec, whatever else the machine has installed."""
        self.km = self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config,
                                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self._folder.kernels)]))
        return self.km

    # --- the run ----------------------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        self.run = {"kernel_started": False, "student_code_ran": False, "timeouts": [], "died_in": None,
                    "stopped": None, "not_run": [], "records": {}, "stray_records": 0}
        self.deadline = None
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._folder.run_record.write_text(json.dumps(self.run))

    def _cell_timeout(self, cell) -> int | None:
        """The cell's own limit, or what is left of the notebook's, whichever ends first (None: no limit)."""
        limits = [t for t in (self.timeout, self.deadline - time.monotonic()) if t and t != float("inf")]
        return max(1, int(min(limits))) if limits else None

    def preprocess_cell(self, cell, resources, index):
        if self.deadline is None:
            self.run["kernel_started"] = True  # preprocess() got a kernel_info reply before the first cell
            self.deadline = time.monotonic() + (self.notebook_timeout or float("inf"))
        if cell.cell_type != "code":
            if not cell.metadata.get("nbgrader", {}).get("locked"):  # the student's own text
                cell.source = clean_markdown(cell.source)
            return cell, resources
        if self.run["stopped"] is None and time.monotonic() >= self.deadline:
            self.run["stopped"] = f"the notebook used up its time limit of {self.notebook_timeout} s"
        if self.run["stopped"] is not None:
            self.run["not_run"].append(_cell_name(cell))
            if cell.source.strip():
                cell.outputs = [_error("NotRun", f"This cell did not run: {self.run['stopped']}.")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.run["died_in"] = _cell_name(cell)
            self.run["stopped"] = f"the kernel stopped in cell '{_cell_name(cell)}'"
            cell.outputs = inert_outputs(cell.get("outputs", [])) + [_error(
                "KernelDied", "The kernel stopped while this cell ran: the code exited Python, crashed it, or ran "
                "out of memory or processes.")]
            self._take_record(cell)
        except CellTimeoutError:  # interrupted after its time limit, the kernel did not stop: end the run
            self.run["timeouts"].append(_cell_name(cell))
            self.run["stopped"] = f"the kernel did not stop after cell '{_cell_name(cell)}' was interrupted"
            cell.outputs = inert_outputs(cell.get("outputs", [])) + [_error(
                "CellTimeoutError", "This cell ran longer than its time limit and did not stop when interrupted.")]
            run_sync(self.km.shutdown_kernel)(now=True)
            self._take_record(cell)
        return cell, resources

    async def _async_handle_timeout(self, timeout, cell=None):
        if cell is not None:
            self.run["timeouts"].append(_cell_name(cell))
        await ensure_async(self.km.interrupt_kernel())
        budget = "the notebook's remaining time" if self.timeout and timeout < self.timeout else "its time limit"
        return {"content": {"status": "error", "ename": "CellTimeoutError",
                            "evalue": f"This cell ran longer than {budget} ({timeout} s) and was interrupted.",
                            "traceback": [f"CellTimeoutError: this cell ran longer than {budget} ({timeout} s)."]}}

    # --- each cell ------------------------------------------------------------------------------

    def _before_cell(self, cell, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("locked"):
            self.run["student_code_ran"] = True
        graded = GRADED.get(meta.get("grade_id"))
        if graded is not None:
            for path in sorted((self._folder.pending / graded.check).glob("*")):
                shutil.copyfile(path, self._folder.inbox / path.name)
                (self._folder.inbox / path.name).chmod(0o644)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell = kwargs["cell"]
        self._take_record(cell)
        cell.outputs = inert_outputs(cell.outputs)

    def _take_record(self, cell) -> None:
        """Move the hidden check's record out of the cell's outputs into evidence/; drop any other."""
        records = [o for o in cell.get("outputs", []) if isinstance(o.get("data"), dict) and RECORD_MIME in o["data"]]
        cell.outputs = [o for o in cell.get("outputs", []) if not any(o is r for r in records)]
        graded = GRADED.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if graded is None:
            self.run["stray_records"] += len(records)
            return
        for path in self._folder.inbox.iterdir():
            path.unlink()
        if not records:
            self.run["records"][graded.check] = "missing"
            return
        if len(records) > 1:
            self.run["records"][graded.check] = f"{len(records)} records instead of one"
            return
        self.run["records"][graded.check] = _store_record(records[0]["data"][RECORD_MIME], graded.check,
                                                          self._folder.evidence)


def _store_record(record, check: str, target: Path) -> str:
    """Write a record's files into evidence/; 'ok', or what is wrong with it."""
    if not isinstance(record, dict) or record.get("check") != check or not isinstance(record.get("files"), dict):
        return "not a record of this check"
    files = {}
    for name, encoded in record["files"].items():
        if not (isinstance(name, str) and RECORD_FILE.fullmatch(name) and name.startswith(check)
                and isinstance(encoded, str) and len(encoded) <= MAX_RECORD_BYTES * 4 // 3 + 4):
            return f"a file that is not a record's: {str(name)[:40]!r}"
        try:
            files[name] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return f"{name} is not base64"
    for name, data in files.items():
        (target / name).write_bytes(data)
    return "ok"


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with SealedExecute in place of Execute."""
    from nbgrader.converters import Autograde

    return [SealedExecute if p is Execute else p for p in Autograde.class_traits()["autograde_preprocessors"].default()]
