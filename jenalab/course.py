"""The nbgrader course directory and the nbgrader commands run in it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ASSIGNMENT = "lstm_jena"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", flags=re.M)


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds the end of its log."""


def run_nbgrader(*args: str, root: Path = COURSE_ROOT, env: dict | None = None, timeout: float | None = None) -> str:
    """Run `nbgrader ARGS` in the course root and return its log; raise NbgraderError on failure.

    On timeout the whole process group (nbgrader and the kernels it started) is killed.
    """
    env = dict(os.environ if env is None else env)
    # nbgrader calls helper programs (alembic) by name: they live next to this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = f"nbgrader {' '.join(args)}"
    with subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as process:
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise NbgraderError(f"`{command}` did not finish within {timeout:g} s and was stopped.") from None
    if process.returncode != 0 or "| ERROR]" in log:
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise NbgraderError(f"`{command}` failed in {root} (exit {process.returncode}):\n{tail}")
    return log


def generate_release(root: Path = COURSE_ROOT) -> Path:
    """Write the student version release/lstm_jena/ from source/lstm_jena/ (solutions and hidden tests removed)."""
    source = root / "source" / ASSIGNMENT / NOTEBOOK
    if not source.is_file():
        raise NbgraderError(f"The instructor notebook {source} is missing; restore it from git (git checkout -- {source.relative_to(root)}).")
    run_nbgrader("generate_assignment", ASSIGNMENT, "--force", root=root)
    return root / "release" / ASSIGNMENT / NOTEBOOK


def solved_cells(root: Path = COURSE_ROOT, solutions_only: bool = False) -> dict[str, str]:
    """The instructor notebook's code cells by id, as they run: solution markers removed."""
    import nbformat

    source = nbformat.read(root / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    return {cell.id: SOLUTION_MARKERS.sub("", cell.source) for cell in source.cells if cell.cell_type == "code"
            and (not solutions_only or cell.metadata.get("nbgrader", {}).get("solution"))}
