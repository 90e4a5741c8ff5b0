"""A sandboxed Jupyter kernel for grading student notebooks (`nbgrader autograde`).

`install_kernelspec()` writes a kernelspec named ``jenalab-sandbox`` whose argv runs
`jenalab.sandbox_kernel`.  That launcher stays outside the sandbox: it binds the client's
ZMQ ports and relays them to the real IPython kernel, which listens on unix sockets in a
private dir.  Every kernel gets, in every mode:

* resource limits (memory, file size, open files, CPU time, no core dumps; processes
  where the mode can count them) and a wall-clock limit on the whole kernel lifetime;
  where the machine allows control groups (`jenalab.cgroups`), memory and processes are
  also limited for the kernel's whole process tree, not just per process;
* caps on what its output may weigh (one output, one cell, the whole notebook): the
  launcher replaces what goes beyond them by a short note before any client sees it;
* an environment built from a whitelist (HOME, TMPDIR, IPYTHONDIR, PATH, locale, seeds,
  thread counts and the variables the kernelspec names): nothing of the launcher's
  environment, which holds the grader's paths and secrets;
* PYTHONHASHSEED=0, fixed random/numpy/torch seeds and a fixed number of compute threads,
  so that grades do not depend on the machine.

What else protects the host depends on what the machine permits; `plan()` picks the first
mode that works and `active_protections()` says which, for the grader's log:

1. bubblewrap, started by root: own mount, network (none), PID, IPC and UTS namespaces.
   The kernel sees only /usr, its Python environment, a few /etc files, its working
   directory's files and the kernelspec's `Mount`s, read-only unless a mount is writable,
   and no instructor package (jenalab, grader_tests) even where its Python has one.
   /tmp, HOME, /dev/shm and the working directory are size-capped tmpfs that die with it,
   so nothing it writes there reaches the host.  It runs as its own unprivileged uid
   (one per kernel, so RLIMIT_NPROC counts only its processes) with no capabilities.
2. bubblewrap, started by another user: the same view and namespaces inside a user
   namespace; the kernel keeps that user's uid (no capabilities) and its process limit is
   set inside, where only the sandbox's processes count.  (Root with ``sandbox_uid=None``
   gets this mode too, as root mapped into the namespace: no process limit then.)
3. no usable bubblewrap: `unshare` network and PID namespaces and, for root, an
   unprivileged uid, but NO filesystem isolation: the kernel reads every file its uid can
   (`filesystem_isolated()` is False, so a grader can refuse to run).
4. no namespaces at all (or ``isolate=False``): limits only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jenalab import cgroups

KERNEL_NAME = "jenalab-sandbox"
MiB = 1024**2
GiB = 1024**3
UID_RANGE = 100000  # per-kernel uids: sandbox_uid + launcher pid % UID_RANGE


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one grading kernel.  None switches a limit off."""

    memory_bytes: int | None = 4 * GiB  # RLIMIT_AS per process, and resident memory of the whole tree (cgroup)
    max_processes: int | None = 256  # RLIMIT_NPROC (processes *and threads* of the sandbox uid), and the tree's (cgroup)
    cpu_threads: int = 2  # torch / OpenMP / MKL / OpenBLAS threads
    file_size_bytes: int | None = 256 * MiB  # RLIMIT_FSIZE: largest file the kernel may write
    open_files: int | None = 1024  # RLIMIT_NOFILE
    cpu_seconds: int | None = 7200  # RLIMIT_CPU per process: a backstop behind wall_seconds
    wall_seconds: int | None = 3600  # the launcher kills the kernel this long after its start
    tmpfs_bytes: int | None = 512 * MiB  # size of each writable tmpfs (/tmp, HOME, /dev/shm, cwd)
    output_bytes: int = 2 * MiB  # one output (a print, an image, a table)
    cell_output_bytes: int = 4 * MiB  # all outputs of one cell
    notebook_output_bytes: int = 16 * MiB  # all outputs of the notebook
    record_bytes: int = 64 * MiB  # the grader's records (exported models) of the whole notebook
    cgroups: bool = True  # limit the whole process tree where control groups can be made
    # Started by root, the kernel runs as uid and gid sandbox_uid + launcher pid % UID_RANGE,
    # its own; None: it keeps root's uid, mapped into a user namespace.
    sandbox_uid: int | None = 200000
    isolate: bool = True  # use namespaces (mounts, network, PID); False: rlimits only
    bwrap: str | None = "bwrap"  # bubblewrap, for filesystem isolation; None: do without
    seed: int = 0

    def to_argv(self) -> list[str]:
        """Launcher options; JSON values so that ints, bools and None survive the trip."""
        return [f"--{f.name}={json.dumps(getattr(self, f.name))}" for f in dataclasses.fields(self)]

    @classmethod
    def add_arguments(cls, parser) -> None:
        for f in dataclasses.fields(cls):
            parser.add_argument(f"--{f.name}", type=json.loads, default=f.default)


@dataclass(frozen=True)
class Mount:
    """A host file or directory the kernel sees at ``target``.  Without a mount namespace
    (no bubblewrap) it sees ``source`` itself: the kernel's environment variables that
    name a path under ``target`` then name the same path under ``source``."""

    source: str  # host path
    target: str  # absolute path inside the sandbox
    writable: bool = False


@dataclass(frozen=True)
class Plan:
    """How the launcher wraps the kernel command on this machine."""

    wrapper: tuple[str, ...] = ()  # namespace tool and its options, first in the kernel's argv
    inner: tuple[str, ...] = ()  # runs inside the namespaces, right before Python
    bwrap: bool = False  # the launcher puts bubblewrap's mounts between wrapper and inner
    uid: int | None = None  # the kernel's uid and gid, when root switches to one
    set_nproc: bool = False  # set RLIMIT_NPROC before the wrapper runs
    nproc: bool = False  # whether a process limit is enforced at all
    tree: bool = False  # whether each kernel gets a control group that limits its whole process tree
    protections: tuple[str, ...] = ()


def _failure(argv: Sequence[str], **kwargs) -> str | None:
    """None if argv runs and succeeds, else why not (the last line it printed on stderr)."""
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kwargs)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    lines = run.stderr.strip().splitlines()
    return None if run.returncode == 0 else (lines[-1] if lines else f"exit status {run.returncode}")


def _bwrap_plan(limits: SandboxLimits, bwrap: str, uid: int | None, tools: dict) -> Plan:
    size = f"{limits.tmpfs_bytes // MiB} MiB" if limits.tmpfs_bytes else "unlimited size"
    protections = (
        "filesystem isolation (bubblewrap): sees only /usr, its Python environment, a few /etc"
        " files, its working directory's files and its mounts, read-only unless a mount is"
        " writable; instructor packages (jenalab, grader_tests) hidden",
        f"writable: /tmp, HOME, /dev/shm, the working directory (tmpfs, {size} each, gone with"
        " the kernel) and writable mounts",
        "no network (own network namespace)", "own PID namespace", "own IPC and UTS namespaces")
    if uid is not None:
        # No user namespace: in one, the kernel's uid would be host root, for whom
        # RLIMIT_NPROC is not enforced.  bwrap sets up as root, setpriv drops it.
        return Plan(
            wrapper=(bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                     "--unshare-cgroup-try", "--die-with-parent", "--new-session"),
            inner=(tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"),
            bwrap=True, uid=uid, set_nproc=True, nproc=True,
            protections=(*protections, f"runs as its own unprivileged uid ({limits.sandbox_uid}"
                         f" + launcher pid % {UID_RANGE}), no capabilities"))
    root = os.geteuid() == 0
    # Set inside the user namespace, RLIMIT_NPROC counts only the sandbox's processes
    # (but never those of host root, which root mapped into it still is).
    inner = (tools["prlimit"], f"--nproc={limits.max_processes}", "--") \
        if limits.max_processes is not None and tools["prlimit"] else ()
    who = "root mapped into a user namespace" if root else "this user's uid in a user namespace"
    return Plan(wrapper=(bwrap, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"),
                inner=inner, bwrap=True, nproc=bool(inner) and not root,
                protections=(*protections, f"runs as {who}, no capabilities"))


def _unshare_plan(limits: SandboxLimits, uid: int | None, tools: dict) -> Plan | None:
    """Network and PID namespaces without bubblewrap, if `unshare` may create them."""
    if not tools["unshare"]:
        return None
    root = os.geteuid() == 0
    # --kill-child: when the launcher dies, the namespace's first process gets SIGKILL,
    # which takes every process of the namespace with it (no stray student processes).
    namespaces = (tools["unshare"], "--net", "--pid", "--kill-child")
    if uid is not None and tools["setpriv"] and not _failure([*namespaces, "true"]):
        # A uid that cannot run a Python living in a private home (pyenv in /root) makes
        # the kernel keep one capability, reading any file (but still writing none of root's).
        runnable = not _failure([sys.executable, "-I", "-c", "import os; os.listdir('.')"],
                                user=uid, group=uid, extra_groups=[])
        caps = "-all" if runnable else "-all,+dac_read_search"
        return Plan(
            wrapper=namespaces,
            # Changing uid clears the parent-death signal --kill-child set: set it again.
            inner=(tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                   f"--inh-caps={caps}", f"--ambient-caps={caps}", f"--bounding-set={caps}",
                   "--no-new-privs", "--pdeathsig=KILL"),
            uid=uid, set_nproc=True, nproc=True,
            protections=("no network (own network namespace)", "own PID namespace",
                         f"runs as its own unprivileged uid ({limits.sandbox_uid} + launcher pid"
                         f" % {UID_RANGE}): cannot write host files"
                         + ("" if runnable else ", but may read any (its Python is not readable"
                            " for that uid)")))
    mapped = (tools["unshare"], "--map-root-user", *namespaces[1:])
    if _failure(mapped + ("true",)):
        return None
    # A user namespace, open to ordinary users on most distributions.
    inner = (tools["prlimit"], f"--nproc={limits.max_processes}", "--") \
        if not root and limits.max_processes is not None and tools["prlimit"] else ()
    return Plan(wrapper=mapped, inner=inner, nproc=bool(inner),
                protections=("no network (own network namespace)", "own PID namespace",
                             "runs as root: can write any host file" if root else
                             "runs as this user: can write every file this user can"))


def _common_protections(limits: SandboxLimits, p: Plan, no_tree: str | None) -> tuple[str, ...]:
    lines = []
    if p.tree:
        lines.append(f"the kernel and every process it starts: {limits.memory_bytes // MiB} MiB of memory together "
                     f"(files in its tmpfs included) and at most {limits.max_processes} processes+threads (control group)")
    else:
        lines.append(f"NO limit for the whole process tree ({no_tree}): memory and processes are limited per process or per uid only")
    lines.append(f"max {limits.max_processes} processes+threads" if p.nproc and limits.max_processes
                 else "NO process limit" if not p.tree else "no per-uid process limit")
    if limits.memory_bytes:
        lines.append(f"memory {limits.memory_bytes // MiB} MiB per process (RLIMIT_AS)")
    if limits.file_size_bytes:
        lines.append(f"files up to {limits.file_size_bytes // MiB} MiB (RLIMIT_FSIZE)")
    if limits.open_files:
        lines.append(f"{limits.open_files} open files")
    if limits.cpu_seconds:
        lines.append(f"CPU time {limits.cpu_seconds} s per process")
    if limits.wall_seconds:
        lines.append(f"kernel killed after {limits.wall_seconds} s")
    lines.append(f"output kept up to {limits.output_bytes // MiB} MiB per output, {limits.cell_output_bytes // MiB} MiB "
                 f"per cell, {limits.notebook_output_bytes // MiB} MiB per notebook (the rest replaced by a note)")
    return (*lines, "no core dumps", f"compute threads: {limits.cpu_threads}",
            f"seeds fixed ({limits.seed}), PYTHONHASHSEED=0",
            "private HOME and TMPDIR; environment from a whitelist, none of the launcher's")


@functools.cache
def plan(limits: SandboxLimits = SandboxLimits()) -> Plan:
    """Probe what this machine permits, once per process (a few short subprocesses)."""
    root = os.geteuid() == 0
    uid = limits.sandbox_uid + os.getpid() % UID_RANGE if root and limits.sandbox_uid is not None else None
    tools = {name: shutil.which(name) for name in ("unshare", "setpriv", "prlimit")}
    bwrap = shutil.which(limits.bwrap) if limits.bwrap else None
    no_tree = "switched off (cgroups=False)" if not limits.cgroups else cgroups.available()
    tree = no_tree is None
    if not limits.isolate:
        reason = "namespaces switched off (isolate=False)"
    elif not limits.bwrap:
        reason = "bubblewrap switched off (bwrap=None)"
    elif not bwrap:
        reason = "bubblewrap not installed"
    elif uid is not None and not tools["setpriv"]:
        reason = "setpriv not installed"
    else:
        p = _bwrap_plan(limits, bwrap, uid, tools)
        # The least a kernel needs: namespaces, a mount of /proc for its PID namespace, /dev.
        reason = _failure([*p.wrapper, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                           "--", *p.inner, "true"])
        if reason is None:
            p = dataclasses.replace(p, tree=tree)
            return dataclasses.replace(p, protections=(*p.protections, *_common_protections(limits, p, no_tree)))
        reason = f"bubblewrap cannot start: {reason}"
    p = (_unshare_plan(limits, uid, tools) if limits.isolate else None) or Plan(protections=(
        "NO network isolation" + (" (namespaces not permitted here)" if limits.isolate else ""),
        "runs as root: can write any host file" if root else
        "runs as this user: can write every file this user can"))
    loud = f"NO filesystem isolation ({reason}): the kernel can read every file this user can"
    p = dataclasses.replace(p, tree=tree)
    return dataclasses.replace(p, protections=(loud, *p.protections, *_common_protections(limits, p, no_tree)))


def active_protections(limits: SandboxLimits = SandboxLimits()) -> list[str]:
    """What a kernel started here with these limits is protected by, for the grader's log."""
    return list(plan(limits).protections)


def filesystem_isolated(limits: SandboxLimits = SandboxLimits()) -> bool:
    """Whether a kernel started here sees only its own files (a bubblewrap mode)."""
    return plan(limits).bwrap


def kernelspec(limits: SandboxLimits = SandboxLimits(), mounts: Sequence[Mount] = (),
               env: Mapping[str, str] = {}, preload: Sequence[str] = ()) -> dict:
    """The kernelspec of a kernel with these limits, host paths mounted into it and variables.

    `preload` names modules the kernel imports from its PYTHONPATH before the first cell, so that
    files a notebook writes into its working directory cannot stand in for them later."""
    for m in mounts:
        if not os.path.isabs(m.target) or not os.path.isabs(m.source):
            raise ValueError(f"mount paths must be absolute: {m}")
    extra = [f"--mounts={json.dumps([dataclasses.asdict(m) for m in mounts])}"] if mounts else []
    extra += [f"--env={json.dumps(dict(env))}"] if env else []
    extra += [f"--preload={json.dumps(list(preload))}"] if preload else []
    return {
        "argv": [sys.executable, "-m", "jenalab.sandbox_kernel", *limits.to_argv(), *extra,
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (jenalab grading sandbox)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install_kernelspec(prefix: str | os.PathLike | None = None,
                       limits: SandboxLimits = SandboxLimits(), mounts: Sequence[Mount] = (),
                       env: Mapping[str, str] = {}, preload: Sequence[str] = ()) -> str:
    """Write ``<prefix>/kernels/jenalab-sandbox/kernel.json``; return the kernel name.

    ``prefix`` is a Jupyter data directory (an entry of JUPYTER_PATH); by default the
    one of this environment, ``sys.prefix/share/jupyter``, which Jupyter always searches.
    """
    prefix = Path(prefix) if prefix is not None else Path(sys.prefix) / "share" / "jupyter"
    spec_dir = prefix / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(kernelspec(limits, mounts, env, preload), indent=1) + "\n")
    return KERNEL_NAME


if __name__ == "__main__":
    # python -m jenalab.sandbox: install with the default limits into this environment.
    print(f"installed kernelspec {install_kernelspec()!r} in {sys.prefix}/share/jupyter/kernels")
    print("protections on this machine:", *active_protections(), sep="\n  ")
