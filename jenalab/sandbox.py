"""A sandboxed Jupyter kernel for grading student notebooks (`nbgrader autograde`).

`install_kernelspec()` writes a kernelspec named ``jenalab-sandbox`` whose argv runs
`jenalab.sandbox_kernel`.  That launcher starts the ordinary IPython kernel with:

* resource limits (memory, processes/threads, file size, open files, CPU time, no core
  dumps) and a wall-clock limit on the whole kernel lifetime;
* no network: the kernel lives in its own network namespace (only a loopback that is
  down).  nbclient still reaches it over its usual TCP ports, because the launcher stays
  outside and relays the five ZMQ channels to unix sockets in the kernel's private dir;
* its own PID namespace, so every process a notebook starts dies with the kernel;
* when started by root, an unprivileged uid (RLIMIT_NPROC is not enforced for root);
* private HOME/TMPDIR/IPYTHONDIR, PYTHONHASHSEED=0, fixed random/numpy/torch seeds and
  a fixed number of compute threads, so grades do not depend on the machine.

Where namespaces are not permitted the kernel still starts with whatever is possible;
`active_protections()` says which protections are in force, for the grader's log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

KERNEL_NAME = "jenalab-sandbox"
MiB = 1024**2
GiB = 1024**3
NOBODY = 65534


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one grading kernel.  None switches a limit off."""

    memory_bytes: int | None = 4 * GiB  # RLIMIT_AS, per process
    max_processes: int | None = 256  # RLIMIT_NPROC: processes *and threads* of the sandbox uid
    cpu_threads: int = 2  # torch / OpenMP / MKL / OpenBLAS threads
    file_size_bytes: int | None = 256 * MiB  # RLIMIT_FSIZE: largest file the kernel may write
    open_files: int | None = 1024  # RLIMIT_NOFILE
    cpu_seconds: int | None = 7200  # RLIMIT_CPU per process: a backstop behind wall_seconds
    wall_seconds: int | None = 3600  # the launcher kills the kernel this long after its start
    sandbox_uid: int | None = NOBODY  # uid the kernel runs as when started by root; None: keep
    sandbox_gid: int = NOBODY
    isolate: bool = True  # use namespaces (network, PID); False: rlimits only
    seed: int = 0

    def to_argv(self) -> list[str]:
        """Launcher options; JSON values so that ints, bools and None survive the trip."""
        return [f"--{f.name}={json.dumps(getattr(self, f.name))}" for f in dataclasses.fields(self)]

    @classmethod
    def add_arguments(cls, parser) -> None:
        for f in dataclasses.fields(cls):
            parser.add_argument(f"--{f.name}", type=json.loads, default=f.default)


@dataclass
class Plan:
    """How the launcher wraps the kernel command on this machine."""

    wrapper: list[str] = field(default_factory=list)  # argv put before `python -m ipykernel_launcher`
    set_nproc: bool = False  # whether RLIMIT_NPROC is set before the wrapper runs
    owner: tuple[int, int] | None = None  # uid/gid that must own the kernel's private dir
    protections: list[str] = field(default_factory=list)


def _works(argv: list[str], **kwargs) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, **kwargs).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def plan(limits: SandboxLimits) -> Plan:
    """Probe what this machine permits (cheap: a few short subprocesses)."""
    p = Plan()
    unshare, setpriv, prlimit = (shutil.which(c) for c in ("unshare", "setpriv", "prlimit"))
    # --kill-child: when the launcher dies, the namespace's first process gets SIGKILL,
    # which takes every process of the namespace with it (no stray student processes).
    namespaces = ["--net", "--pid", "--kill-child"]
    root = os.geteuid() == 0
    nproc = False  # whether RLIMIT_NPROC will really be enforced
    if limits.isolate and root and limits.sandbox_uid is not None and unshare and setpriv \
            and _works([unshare, *namespaces, "true"]):
        uid, gid = limits.sandbox_uid, limits.sandbox_gid
        # nobody cannot run a Python that lives in a private home (pyenv in /root): then
        # the kernel keeps one capability, reading any file (but still writes none of root's).
        runnable = _works([sys.executable, "-I", "-c", "import os; os.listdir('.')"],
                          user=uid, group=gid, extra_groups=[])
        caps = "-all" if runnable else "-all,+dac_read_search"
        p.wrapper = [unshare, *namespaces, setpriv, f"--reuid={uid}", f"--regid={gid}",
                     "--clear-groups", f"--inh-caps={caps}", f"--ambient-caps={caps}",
                     f"--bounding-set={caps}", "--no-new-privs",
                     # Changing uid clears the parent-death signal --kill-child set: set it again.
                     "--pdeathsig=KILL"]
        p.set_nproc, p.owner, nproc = True, (uid, gid), True
        p.protections += ["no network (own network namespace)", "own PID namespace",
                          f"runs as uid {uid}: cannot write host files" + ("" if runnable else
                          f", but may read any (its Python is not readable for uid {uid})")]
    elif limits.isolate and unshare and _works([unshare, "--map-root-user", *namespaces, "true"]):
        # A user namespace, open to ordinary users on most distributions.
        p.wrapper = [unshare, "--map-root-user", *namespaces]
        if not root and prlimit and limits.max_processes is not None:
            # Set inside the namespace, so that only its own processes are counted.
            p.wrapper += [prlimit, f"--nproc={limits.max_processes}", "--"]
            nproc = True
        p.protections += ["no network (own network namespace)", "own PID namespace"]
    else:
        # Without a namespace RLIMIT_NPROC would count every process of this user: not set.
        p.protections.append("NO network isolation"
                             + (" (namespaces not permitted here)" if limits.isolate else ""))
    if root and p.owner is None:
        p.protections.append("runs as root: can write any host file")
    if limits.max_processes is None or not nproc:
        p.protections.append("NO process limit")
    else:
        p.protections.append(f"max {limits.max_processes} processes+threads")
    if limits.memory_bytes:
        p.protections.append(f"memory {limits.memory_bytes // MiB} MiB per process (RLIMIT_AS)")
    if limits.file_size_bytes:
        p.protections.append(f"files up to {limits.file_size_bytes // MiB} MiB (RLIMIT_FSIZE)")
    if limits.open_files:
        p.protections.append(f"{limits.open_files} open files")
    if limits.cpu_seconds:
        p.protections.append(f"CPU time {limits.cpu_seconds} s per process")
    if limits.wall_seconds:
        p.protections.append(f"kernel killed after {limits.wall_seconds} s")
    p.protections += ["no core dumps", f"compute threads: {limits.cpu_threads}",
                      f"seeds fixed ({limits.seed}), PYTHONHASHSEED=0", "private HOME and TMPDIR"]
    return p


def active_protections(limits: SandboxLimits = SandboxLimits()) -> list[str]:
    """What a kernel started here with these limits is protected by, for the grader's log."""
    return plan(limits).protections


def kernelspec(limits: SandboxLimits = SandboxLimits()) -> dict:
    return {
        "argv": [sys.executable, "-m", "jenalab.sandbox_kernel", *limits.to_argv(),
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (jenalab grading sandbox)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install_kernelspec(prefix: str | os.PathLike | None = None,
                       limits: SandboxLimits = SandboxLimits()) -> str:
    """Write ``<prefix>/kernels/jenalab-sandbox/kernel.json``; return the kernel name.

    ``prefix`` is a Jupyter data directory (an entry of JUPYTER_PATH); by default the
    one of this environment, ``sys.prefix/share/jupyter``, which Jupyter always searches.
    """
    prefix = Path(prefix) if prefix is not None else Path(sys.prefix) / "share" / "jupyter"
    spec_dir = prefix / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(kernelspec(limits), indent=1) + "\n")
    return KERNEL_NAME


if __name__ == "__main__":
    # python -m jenalab.sandbox: install with the default limits into this environment.
    print(f"installed kernelspec {install_kernelspec()!r} in {sys.prefix}/share/jupyter/kernels")
    print("protections on this machine:", *active_protections(), sep="\n  ")
