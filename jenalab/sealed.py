"""nbgrader's Execute preprocessor, sealed: what the student's kernel may see and when.

It runs in the ``nbgrader autograde`` process, outside the sandbox, and works on a folder that
the grading worker prepared (``SealedExecute.sealed_dir``):

* ``inbox/`` (read-only in the kernel): the test inputs appear there only when the forecast cell
  starts, so no cell before it can train on or look up the test period;
* ``kernel-evidence/`` (writable in the kernel): where the hidden checks record evidence; a check's
  file is removed before its cell runs and copied to ``evidence/`` (out of the kernel's reach) as
  soon as the cell ends, so only what the hidden check itself recorded counts, never a file
  planted earlier or rewritten later;
* ``student-code-ran``: written when the first cell a student could edit starts, so that the
  worker can tell a failure of the grader (before any student code ran) from the student's;
* ``kernels/``: the sandbox kernelspec of this submission, the only one the kernel is started from.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from grader_tests.contract import GRADED
from grader_tests.evidence import TEST_INPUTS

MAX_EVIDENCE_BYTES = 64 * 1024**2
PENDING_INPUTS = "test_inputs.npy"  # in sealed_dir until the forecast cell starts
STUDENT_CODE_RAN = "student-code-ran"


class SealedExecute(Execute):
    sealed_dir = Unicode(help="folder prepared by the grading worker (see jenalab.sealed)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.on_cell_execute = self._before_cell  # nbclient's hook, called before each code cell

    @property
    def _folder(self) -> Path:
        return Path(self.sealed_dir)

    def create_kernel_manager(self):
        """The kernel comes from this submission's own kernelspec, whatever else the machine has installed."""
        self.km = self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config,
                                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self._folder / "kernels")]))
        return self.km

    def _before_cell(self, cell, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("locked"):
            (self._folder / STUDENT_CODE_RAN).touch()
        graded = GRADED.get(meta.get("grade_id"))
        if graded is None:
            return
        (self._folder / "kernel-evidence" / f"{graded.check}.npz").unlink(missing_ok=True)
        if graded.check == "forecast":
            inbox = self._folder / "inbox" / TEST_INPUTS
            shutil.copyfile(self._folder / PENDING_INPUTS, inbox)
            inbox.chmod(0o644)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        graded = GRADED.get(kwargs["cell"].metadata.get("nbgrader", {}).get("grade_id"))
        if graded is not None:
            _take(self._folder / "kernel-evidence" / f"{graded.check}.npz", self._folder / "evidence")
            (self._folder / "inbox" / TEST_INPUTS).unlink(missing_ok=True)


def _take(path: Path, target: Path) -> None:
    """Copy a regular file the kernel wrote, never following a link it may have planted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # not recorded (the check did not get that far), or a link
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_EVIDENCE_BYTES:
            (target / path.name).write_bytes(source.read())


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with SealedExecute in place of Execute."""
    from nbgrader.converters import Autograde

    return [SealedExecute if p is Execute else p for p in Autograde.class_traits()["autograde_preprocessors"].default()]


def prepare(folder: Path) -> None:
    """The sealed folder's parts (the launcher hands kernel-evidence/ over to the kernel's uid)."""
    for name in ("inbox", "kernel-evidence", "evidence"):
        (folder / name).mkdir(parents=True)
    (folder / "inbox").chmod(0o755)
