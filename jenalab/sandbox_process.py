"""Starting a process inside the grading sandbox: the filesystem it sees, its environment and its limits.

`jenalab.sandbox.plan` decides what this machine allows; this module carries it out for one
process: the grading kernel (`jenalab.sandbox_kernel`) or a one-off program such as the evaluator
of exported models (`jenalab.evaluator`). The caller gives the process a private folder of its own
(removed by the caller) and its working directory; in the bubblewrap modes the process sees only the
system, its Python, the working directory's files, the private folder and the given mounts.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from jenalab import cgroups
from jenalab.sandbox import Mount, Plan, SandboxLimits, plan

SANDBOX_HOME = "/home/student"  # the kernel's HOME in the bubblewrap modes
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
       "localtime", "hosts", "fonts")
HIDDEN_PACKAGES = ("jenalab", "grader_tests")
# Put over an instructor package that lies in the kernel's Python environment: an empty
# directory alone would still import, as a namespace package.
HIDDEN_INIT = b"raise ModuleNotFoundError(f'No module named {__name__!r} in the grading sandbox', name=__name__)\n"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _memfd(data: bytes) -> int:
    """A file descriptor to read data from, for bwrap."""
    fd = os.memfd_create("jenalab-sandbox")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Layout:
    """The bwrap options that build the kernel's filesystem.

    Mounts are applied parents first, so that none hides a deeper one; missing parent
    dirs are made with mode 0755 (bwrap's own are 0700: the kernel's uid could not pass).
    """

    def __init__(self) -> None:
        self.ops: list[tuple[str, list[str], bool]] = []  # (target, options, is a bind)
        self.binds: list[tuple[str, str]] = []  # (real host path, target)
        self.fds: list[int] = []  # read by bwrap: the child must inherit them

    def bind(self, source: str, target: str, writable: bool = False, missing_ok: bool = False) -> None:
        self.binds.append((os.path.realpath(source), target))
        option = ("--bind" if writable else "--ro-bind") + ("-try" if missing_ok else "")
        self.ops.append((target, [option, source, target], True))

    def tmpfs(self, target: str, size: int | None) -> None:
        self.ops.append((target, ["--perms", "1777", *(["--size", str(size)] if size else []),
                                  "--tmpfs", target], False))

    def other(self, target: str, *options: str) -> None:
        """--proc, --dev or --symlink LINK: no host files behind target."""
        self.ops.append((target, [*options, target], False))

    def hide(self, target: str) -> None:
        fd = _memfd(HIDDEN_INIT)
        self.fds.append(fd)
        # 0444: bwrap makes it 0600, owned by root in the privileged mode.
        self.ops.append((target, ["--tmpfs", target, "--perms", "0444", "--ro-bind-data", str(fd),
                                  f"{target}/__init__.py", "--remount-ro", target], False))

    def visible_at(self, path: str) -> list[str]:
        """Where a host path shows inside the sandbox."""
        real = os.path.realpath(path)
        return [target + real[len(source):].rstrip("/") for source, target in self.binds
                if _within(real, source)]

    def args(self, chdir: str) -> list[str]:
        out, made, bound = [], {"/"}, []
        for target, options, is_bind in sorted(self.ops, key=lambda op: len(Path(op[0]).parts)):
            for parent in map(str, reversed(Path(target).parents)):
                if parent not in made and not any(_within(parent, b) for b in bound):
                    out += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            out += options
            made.add(target)
            if is_bind:
                bound.append(target)
        # bwrap's own tmpfs at / and /dev have no size cap, and in a user namespace the kernel
        # owns them: read-only (mounts on them keep their own flags).
        return [*out, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", chdir]


def _python_dirs() -> list[tuple[str, str]]:
    """(host, sandbox) paths of this Python: its environment, the installation that made it
    (which may sit in a private home, such as pyenv's in /root) and its real executable."""
    real_bin = os.path.dirname(os.path.realpath(sys.executable))
    return [(os.path.realpath(p), p) for p in (sys.base_prefix, sys.prefix)] + [(real_bin, real_bin)]


def _instructor_dirs() -> set[str]:
    """Where the kernel might import instructor code from: where it is imported here, and
    any copy in a directory of sys.path (an installed one shadowed by an editable install)."""
    dirs = set()
    for name in HIDDEN_PACKAGES:
        spec = importlib.util.find_spec(name)
        found = [*(spec.submodule_search_locations or [] if spec else []),
                 *(os.path.join(entry, name) for entry in sys.path if entry)]
        dirs.update(d for d in found if os.path.isdir(d))
    return dirs


def _layout(limits: SandboxLimits, private: Path, cwd: str, mounts: list[Mount]) -> Layout:
    """All the kernel sees: the system and its Python read-only, its tmpfs, the working dir's
    files, its private dir and mounts, and no instructor package."""
    fs = Layout()
    fs.bind("/usr", "/usr")
    for path in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(path):
            fs.other(path, "--symlink", os.readlink(path))
        elif os.path.isdir(path):
            fs.bind(path, path)
    for path in (f"/etc/{name}" for name in ETC):
        if os.path.exists(path):
            fs.bind(path, path)
    fs.other("/proc", "--proc")
    fs.other("/dev", "--dev")
    for source, target in _python_dirs():
        if target not in fs.visible_at(source):
            fs.bind(source, target)
    for target in ("/tmp", SANDBOX_HOME, "/dev/shm"):
        fs.tmpfs(target, limits.tmpfs_bytes)
    if cwd != "/":
        # The notebook's folder, at its host path: its files are readable, new ones go to a
        # tmpfs.  Nothing reaches the host folder, where nbgrader later writes as root.
        fs.tmpfs(cwd, limits.tmpfs_bytes)
        for entry in os.scandir(cwd):
            if entry.is_symlink():  # re-created, so that it resolves inside the sandbox
                fs.other(entry.path, "--symlink", os.readlink(entry.path))
            else:
                fs.bind(entry.path, entry.path, missing_ok=True)
    fs.bind(str(private), str(private), writable=True)
    for m in mounts:
        fs.bind(m.source, m.target, m.writable)
    for path in _instructor_dirs():
        for target in fs.visible_at(path):
            fs.hide(target)
    return fs


def environment(limits: SandboxLimits, private: Path, p: Plan, mounts: list[Mount],
                 extra: dict[str, str]) -> dict[str, str]:
    """The process's whole environment: nothing of ours, which holds the grader's secrets."""
    home, tmp = (SANDBOX_HOME, "/tmp") if p.bwrap else (str(private / "home"), str(private / "tmp"))
    env = {"HOME": home, "TMPDIR": tmp, "IPYTHONDIR": str(private / "ipython"),
           "PATH": f"{sys.prefix}/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "PYTHONHASHSEED": "0", **dict.fromkeys(THREAD_VARIABLES, str(limits.cpu_threads)), **extra}
    if p.bwrap:
        return env
    # No mount namespace: the kernel must find the mounts' files at their host paths.
    deepest_first = sorted(mounts, key=lambda m: len(m.target), reverse=True)
    return {name: next((m.source + value[len(m.target):] for m in deepest_first
                        if _within(value, m.target)), value)
            for name, value in env.items()}


def _limit_child(limits: SandboxLimits, p: Plan, launcher: int, group: cgroups.Group | None) -> None:
    """Runs in the forked child before exec (no threads have been started yet)."""
    if sys.platform == "linux":  # if the launcher dies (even by SIGKILL), so does the kernel
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != launcher:  # it died before the line above: nobody would ever stop us
            os._exit(1)
    if group is not None:  # before exec: every process the kernel starts is counted with it
        group.join()
    wanted = {
        resource.RLIMIT_AS: limits.memory_bytes,
        resource.RLIMIT_FSIZE: limits.file_size_bytes,
        resource.RLIMIT_NOFILE: limits.open_files,
        resource.RLIMIT_CPU: limits.cpu_seconds,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NPROC: limits.max_processes if p.set_nproc else None,
    }
    for which, value in wanted.items():
        if value is not None:
            resource.setrlimit(which, (value, value))


def _command(p: Plan, limits: SandboxLimits, private: Path, cwd: str, mounts: list[Mount],
             argv: list[str]) -> tuple[list[str], list[int]]:
    """The process's full argv, and the file descriptors it must inherit."""
    if not p.bwrap:
        return [*p.wrapper, *p.inner, *argv], []
    fs = _layout(limits, private, cwd, mounts)
    # Through a descriptor rather than argv: the kernel can read the argv of bwrap's init
    # (/proc/1/cmdline), and a folder of many files could exceed the argv size limit.
    args = _memfd(b"".join(a.encode() + b"\0" for a in fs.args(chdir=cwd)))
    return [*p.wrapper, "--args", str(args), "--", *p.inner, *argv], [*fs.fds, args]


def start(argv: list[str], limits: SandboxLimits, private: Path, cwd: str, mounts: list[Mount] = (),
          env: dict[str, str] = {}, name: str = "process", **popen) -> tuple[subprocess.Popen, cgroups.Group | None]:
    """Start argv in the sandbox, in its own control group where the plan has them; the caller waits for the
    process, then removes the group (`Group.remove`, which also kills what is left of the process tree)."""
    p = plan(limits)
    if os.geteuid() == 0:  # the sandboxed uid must own its files and where it may write
        uid = 0 if p.uid is None else p.uid
        for path in [private, *private.rglob("*"), *(m.source for m in mounts if m.writable)]:
            os.chown(path, uid, uid)
    command, fds = _command(p, limits, private, cwd, mounts, argv)
    group = None
    if p.tree:
        try:
            group = cgroups.create(f"{cgroups.PREFIX}{os.getpid()}-{name}", limits.memory_bytes, limits.max_processes)
        except OSError as err:
            print(f"jenalab sandbox: no control group for this {name} ({err})", file=sys.stderr, flush=True)
    try:
        child = subprocess.Popen(command, env=environment(limits, private, p, mounts, env), pass_fds=fds, cwd=cwd,
                                 preexec_fn=lambda launcher=os.getpid(): _limit_child(limits, p, launcher, group),
                                 **popen)
    except BaseException:
        if group is not None:
            group.remove()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return child, group
