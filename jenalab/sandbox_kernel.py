"""Launcher of the sandboxed grading kernel (see `jenalab.sandbox`).

    python -m jenalab.sandbox_kernel [--<limit>=<json> ...] [--mounts=<json>] [--env=<json>]
                                     [--preload=<json>] -f CONNECTION_FILE [kernel args]

It stays outside the sandbox: it binds the ports named in CONNECTION_FILE, as a kernel
would, and relays each ZMQ channel to the real kernel, which listens on unix sockets in
its private dir (unix sockets are files, so they cross the network and mount namespaces).
In the bubblewrap modes it also lays out the kernel's filesystem (`Layout`).  It exits
with the kernel's status, so jupyter_client sees a dead kernel as a dead process.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import zmq

from jenalab.sandbox import Mount, Plan, SandboxLimits, plan

# channel: (socket facing the client, socket facing the kernel).  ROUTER->DEALER keeps the
# client's identity frames on each message, so replies find their way back; XPUB/XSUB
# passes subscriptions up and broadcasts down.
CHANNELS = {
    "shell": (zmq.ROUTER, zmq.DEALER),
    "control": (zmq.ROUTER, zmq.DEALER),
    "stdin": (zmq.ROUTER, zmq.DEALER),
    "hb": (zmq.ROUTER, zmq.DEALER),
    "iopub": (zmq.XPUB, zmq.XSUB),
}
# The kernel sends input requests on stdin to the identity that sent the shell request:
# so all kernel-facing DEALERs share one identity.
RELAY_IDENTITY = b"jenalab-sandbox-relay"

STARTUP = '''\
# Written by jenalab.sandbox_kernel: the same random state and threads in every kernel.
def _jenalab_sandbox_start(seed={seed}, threads={threads}, preload={preload!r}):
    import importlib, os, random, sys
    # Imported from PYTHONPATH before any cell, so a module of the same name that a cell writes
    # into the working directory (first on sys.path) cannot stand in for them later.
    path = list(sys.path)
    sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    try:
        for name in preload:
            importlib.import_module(name)
    finally:
        sys.path[:] = path
    try:
        import numpy
    except ImportError:
        numpy = None
    try:
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)  # RuntimeError if a pool already runs
    except (ImportError, RuntimeError):
        torch = sys.modules.get("torch")

    def seed_everything(*_):
        random.seed(seed)
        if numpy:
            numpy.random.seed(seed)
        if torch:
            torch.manual_seed(seed)

    # Seed again right before the first cell: the kernel draws from `random` while it
    # starts (IPython's banner tip, once per kernel_info request, and clients differ).
    def before_first_cell(*_):
        get_ipython().events.unregister("pre_run_cell", before_first_cell)
        seed_everything()

    seed_everything()
    get_ipython().events.register("pre_run_cell", before_first_cell)
_jenalab_sandbox_start()
del _jenalab_sandbox_start
'''

# Waits for EOF on stdin, lets the dying kernel go, then removes the dir.
CLEANUP = "import shutil, sys, time; sys.stdin.buffer.read(); time.sleep(1); shutil.rmtree(sys.argv[1], True)"

SANDBOX_HOME = "/home/student"  # the kernel's HOME in the bubblewrap modes
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
       "localtime", "hosts", "fonts")
HIDDEN_PACKAGES = ("jenalab", "grader_tests")
# Put over an instructor package that lies in the kernel's Python environment: an empty
# directory alone would still import, as a namespace package.
HIDDEN_INIT = b"raise ModuleNotFoundError(f'No module named {__name__!r} in the grading sandbox', name=__name__)\n"


def _address(transport: str, ip: str, port: int) -> str:
    return f"tcp://{ip}:{port}" if transport == "tcp" else f"ipc://{ip}-{port}"


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


def _prepare(private: Path, limits: SandboxLimits, client: dict, p: Plan, preload: list[str]) -> Path:
    """The kernel's startup file and its own connection file, which it returns."""
    startup = private / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    if not p.bwrap:  # bubblewrap gives it a tmpfs for each
        (private / "home").mkdir()
        (private / "tmp").mkdir()
    (startup / "00-jenalab-sandbox.py").write_text(
        STARTUP.format(seed=limits.seed, threads=limits.cpu_threads, preload=preload))
    kernel_conn = private / "kernel.json"
    kernel_conn.write_text(json.dumps({
        "transport": "ipc", "ip": str(private / "k"),
        **{f"{name}_port": i for i, name in enumerate(CHANNELS, start=1)},
        "key": client["key"], "signature_scheme": client["signature_scheme"],
    }))
    return kernel_conn


def _environment(limits: SandboxLimits, private: Path, p: Plan, mounts: list[Mount],
                 extra: dict[str, str]) -> dict[str, str]:
    """The kernel's whole environment: nothing of ours, which holds the grader's secrets."""
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


def _interrupt(child: subprocess.Popen) -> None:
    """bwrap starts the kernel in a session of its own: pass jupyter_client's SIGINT on to
    its process group, led by bwrap's init (PID 1 in the sandbox, which ignores it)."""
    try:
        init = Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()[0]
        os.killpg(int(init), signal.SIGINT)
    except (OSError, IndexError):
        pass  # not started yet, or gone


def _limit_child(limits: SandboxLimits, p: Plan, launcher: int) -> None:
    """Runs in the forked child before exec (no threads have been started yet)."""
    if sys.platform == "linux":  # if the launcher dies (even by SIGKILL), so does the kernel
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != launcher:  # it died before the line above: nobody would ever stop us
            os._exit(1)
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


def _relay(front: zmq.Socket, back: zmq.Socket) -> None:
    try:
        zmq.proxy(front, back)
    except zmq.ZMQError:
        pass  # the context is being closed


def _command(p: Plan, limits: SandboxLimits, private: Path, mounts: list[Mount],
             kernel: list[str]) -> tuple[list[str], list[int]]:
    """The kernel's full argv, and the file descriptors it must inherit."""
    if not p.bwrap:
        return [*p.wrapper, *p.inner, *kernel], []
    cwd = os.getcwd()  # nbclient starts us in the notebook's folder
    fs = _layout(limits, private, cwd, mounts)
    # Through a descriptor rather than argv: the kernel can read the argv of bwrap's init
    # (/proc/1/cmdline), and a folder of many files could exceed the argv size limit.
    args = _memfd(b"".join(a.encode() + b"\0" for a in fs.args(chdir=cwd)))
    return [*p.wrapper, "--args", str(args), "--", *p.inner, *kernel], [*fs.fds, args]


def main(argv: list[str] | None = None) -> int:
    if sys.platform == "linux":  # nbgrader killed (a timeout, a lost worker) takes us, and so the kernel, along
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        # That covers only a parent alive now: one killed while we started up left us to init, with no
        # client ever to come (jupyter_client names the process that started us).
        if os.environ.get("JPY_PARENT_PID", str(os.getppid())) != str(os.getppid()):
            return 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="connection_file", required=True)
    parser.add_argument("--mounts", type=json.loads, default=[])
    parser.add_argument("--env", type=json.loads, default={})
    parser.add_argument("--preload", type=json.loads, default=[])
    SandboxLimits.add_arguments(parser)
    args, kernel_args = parser.parse_known_args(argv)
    options = vars(args)
    client = json.loads(Path(options.pop("connection_file")).read_text())
    mounts = [Mount(**m) for m in options.pop("mounts")]
    extra_env = options.pop("env")
    preload = options.pop("preload")
    limits = SandboxLimits(**options)
    p = plan(limits)

    private = Path(tempfile.mkdtemp(prefix="jenalab-sandbox-"))
    # jupyter_client may SIGKILL our whole process group: a helper in its own session
    # removes the private dir (student files) once our end of its stdin closes.
    cleaner = subprocess.Popen(  # noqa: F841 (its stdin must stay open until we exit)
        [sys.executable, "-c", CLEANUP, str(private)], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kernel_conn = _prepare(private, limits, client, p, preload)
    if os.geteuid() == 0:  # the kernel's uid must own its files and where it may write
        uid = 0 if p.uid is None else p.uid
        for path in [private, *private.rglob("*"), *(m.source for m in mounts if m.writable)]:
            os.chown(path, uid, uid)
    defaults = {"--HistoryManager.hist_file": ":memory:",
                # Its parent dies with us anyway (and is PID 1 under bwrap, which makes
                # ipykernel's parent poller quit at once): no polling, no console banner.
                "--IPKernelApp.parent_handle": "1"}
    kernel_args += [f"{k}={v}" for k, v in defaults.items()
                    if not any(a.startswith(k) for a in kernel_args)]
    command, fds = _command(p, limits, private, mounts,
                            [sys.executable, "-m", "ipykernel_launcher", "-f", str(kernel_conn), *kernel_args])
    # A no-op handler rather than SIG_IGN: the kernel must still get the interrupts
    # that jupyter_client sends to the whole process group (handlers reset on exec).
    signal.signal(signal.SIGINT, lambda *_: None)
    # bwrap itself dies of SIGINT: it gets a process group of its own and we pass
    # interrupts on (it still dies with us, by the parent-death signal).
    child = subprocess.Popen(command, env=_environment(limits, private, p, mounts, extra_env),
                             pass_fds=fds, process_group=0 if p.bwrap else None,
                             preexec_fn=lambda launcher=os.getpid(): _limit_child(limits, p, launcher))
    for fd in fds:
        os.close(fd)
    if p.bwrap:
        signal.signal(signal.SIGINT, lambda *_: _interrupt(child))
    signal.signal(signal.SIGTERM, lambda *_: child.kill())

    try:
        ctx = zmq.Context()
        for i, (name, (front_type, back_type)) in enumerate(CHANNELS.items(), start=1):
            front, back = ctx.socket(front_type), ctx.socket(back_type)
            front.bind(_address(client["transport"], client["ip"], client[f"{name}_port"]))
            if back_type == zmq.DEALER:
                back.setsockopt(zmq.IDENTITY, RELAY_IDENTITY)
            back.connect(f"ipc://{private}/k-{i}")
            threading.Thread(target=_relay, args=(front, back), daemon=True).start()
    except BaseException:
        child.kill()  # e.g. a port already taken: no kernel nobody can talk to
        raise

    try:
        status = child.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        print(f"jenalab sandbox: kernel killed after {limits.wall_seconds} s (wall-clock limit)",
              file=sys.stderr, flush=True)
        child.kill()
        status = child.wait()
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.stdout.flush()
    # os._exit: the relay threads block in zmq.proxy and must not delay the exit.
    os._exit(main())
