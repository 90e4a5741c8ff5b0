"""Limits for a whole process tree: a control group per grading kernel.

Resource limits (rlimits) hold per process, so a kernel that starts more processes multiplies
them. A control group counts the kernel and everything it starts together: resident memory
(pages of its tmpfs files and the kernel memory of their inodes included) and the number of
processes and threads. Where the machine lets this process create groups (root on cgroup v1, or a
cgroup v2 subtree with the memory and pids controllers delegated to it), each kernel gets one;
elsewhere `available()` says why not and the rlimits remain.

A group is named after the process that made it, so that one left behind by a killed launcher
can be found and removed (`sweep`).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "jenalab-"
CONTROLLERS = ("memory", "pids")


def _mounts() -> dict[str, Path]:
    """Mount point of each hierarchy: 'memory' and 'pids' (v1) and 'unified' (v2), as far as mounted."""
    found = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        separator = fields.index("-")
        point, fstype, options = Path(fields[4]), fields[separator + 1], fields[-1].split(",")
        if fstype == "cgroup2":
            found["unified"] = point
        elif fstype == "cgroup":
            found.update({name: point for name in CONTROLLERS if name in options})
    return found


def _own_paths() -> dict[str, str]:
    """This process's group in each hierarchy ('unified' for v2), from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            paths["unified"] = path
        for name in controllers.split(","):
            if name in CONTROLLERS:
                paths[name] = path
    return paths


@dataclass(frozen=True)
class Layout:
    """Where this process may create groups: the folder of each hierarchy ('memory' and 'pids' on v1,
    'unified' on v2)."""

    parents: dict[str, Path]

    def settings(self, memory_bytes: int | None, max_tasks: int | None) -> dict[tuple[str, str], str]:
        """(hierarchy, limit file) -> value."""
        v1 = "unified" not in self.parents
        wanted = {}
        if memory_bytes:
            wanted[("memory", "memory.limit_in_bytes") if v1 else ("unified", "memory.max")] = str(memory_bytes)
            if not v1:
                wanted[("unified", "memory.swap.max")] = "0"
        if max_tasks:
            wanted[("pids" if v1 else "unified", "pids.max")] = str(max_tasks)
        return wanted


def layout() -> Layout:
    """Where to create groups here; OSError says why it cannot be done."""
    mounts, own = _mounts(), _own_paths()
    if all(name in mounts for name in CONTROLLERS):
        parents = {name: mounts[name] / own.get(name, "/").lstrip("/") for name in CONTROLLERS}
        if not all(os.access(p, os.W_OK) for p in parents.values()):
            raise OSError("the memory and pids control groups (cgroup v1) are not writable for this user")
        return Layout(parents)
    if "unified" in mounts:
        parent = mounts["unified"] / own.get("unified", "/").lstrip("/")
        enabled = parent / "cgroup.subtree_control"
        if not set(CONTROLLERS) <= set(enabled.read_text().split() if enabled.is_file() else ()):
            raise OSError(f"the memory and pids controllers are not enabled below this process's control group "
                          f"({parent}, cgroup v2)")
        if not os.access(parent, os.W_OK):
            raise OSError(f"this process's control group ({parent}, cgroup v2) is not writable for this user")
        return Layout({"unified": parent})
    raise OSError("no control group hierarchy with the memory and pids controllers is mounted")


class Group:
    """A control group of its own for one process tree, with memory and task limits."""

    def __init__(self, folders: dict[str, Path]):
        self.folders = folders

    @classmethod
    def create(cls, where: Layout, name: str, memory_bytes: int | None, max_tasks: int | None) -> Group:
        group = cls({key: parent / name for key, parent in where.parents.items()})
        for folder in group.folders.values():
            folder.mkdir()
        try:
            for (key, limit), value in where.settings(memory_bytes, max_tasks).items():
                (group.folders[key] / limit).write_text(value)
        except OSError:
            group.remove()
            raise
        return group

    def join(self) -> None:
        """Move the calling process into the group (from a child before it runs anything else)."""
        for folder in self.folders.values():
            with open(folder / "cgroup.procs", "w") as fh:
                fh.write("0")

    def pids(self) -> set[int]:
        found = set()
        for folder in self.folders.values():
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def remove(self) -> None:
        """Kill whatever still runs in the group, then remove it."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        for folder in self.folders.values():
            try:
                folder.rmdir()
            except OSError:
                pass


def create(name: str, memory_bytes: int | None, max_tasks: int | None) -> Group:
    """A new group `name` with these limits; OSError when this machine does not allow it."""
    return Group.create(layout(), name, memory_bytes, max_tasks)


def available() -> str | None:
    """None when groups with limits can be made here, else why not."""
    try:
        create(f"{PREFIX}probe-{os.getpid()}-{time.monotonic_ns()}", 64 * 1024**2, 16).remove()
    except OSError as err:
        return str(err)
    return None


def sweep() -> None:
    """Remove the groups of launchers that no longer run (a killed worker's)."""
    try:
        parents = layout().parents
    except OSError:
        return
    for key, parent in parents.items():
        for folder in parent.glob(f"{PREFIX}[0-9]*"):
            if not Path(f"/proc/{folder.name[len(PREFIX):].split('-')[0]}").exists():
                Group({key: folder}).remove()
