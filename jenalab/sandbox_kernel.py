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
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import zmq

from grader_tests.evidence import RECORD_MIME
from jenalab import sandbox_process
from jenalab.output_caps import Screen
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

def _address(transport: str, ip: str, port: int) -> str:
    return f"tcp://{ip}:{port}" if transport == "tcp" else f"ipc://{ip}-{port}"


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


def _interrupt(child: subprocess.Popen) -> None:
    """bwrap starts the kernel in a session of its own: pass jupyter_client's SIGINT on to
    its process group, led by bwrap's init (PID 1 in the sandbox, which ignores it)."""
    try:
        init = Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()[0]
        os.killpg(int(init), signal.SIGINT)
    except (OSError, IndexError):
        pass  # not started yet, or gone


def _relay(front: zmq.Socket, back: zmq.Socket, screen=None, started: threading.Event | None = None) -> None:
    """Pass messages both ways; the kernel's (from `back`) through `screen` when given, and set `started`
    at the kernel's first."""
    try:
        if screen is None:
            zmq.proxy(front, back)
            return
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(back, zmq.POLLIN)
        while True:
            for socket, _ in poller.poll():
                frames = socket.recv_multipart()
                if socket is front:
                    back.send_multipart(frames)
                    continue
                started.set()
                if (kept := screen(frames)) is not None:
                    front.send_multipart(kept)
    except zmq.ZMQError:
        pass  # the context is being closed


def _forward_stderr(stream, started: threading.Event, limit: int = 16 * 1024) -> None:
    """What the kernel writes to its own stderr before it sends its first message (bubblewrap's or Python's
    start-up errors), up to a limit; after that the notebook's code could write there: read and dropped."""
    left = limit
    for line in iter(stream.readline, b""):
        if left > 0 and not started.is_set():
            sys.stderr.buffer.write(line[:left])
            sys.stderr.flush()
            left -= len(line)


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
    defaults = {"--HistoryManager.hist_file": ":memory:",
                # Its parent dies with us anyway (and is PID 1 under bwrap, which makes
                # ipykernel's parent poller quit at once): no polling, no console banner.
                "--IPKernelApp.parent_handle": "1"}
    kernel_args += [f"{k}={v}" for k, v in defaults.items()
                    if not any(a.startswith(k) for a in kernel_args)]
    # A no-op handler rather than SIG_IGN: the kernel must still get the interrupts
    # that jupyter_client sends to the whole process group (handlers reset on exec).
    signal.signal(signal.SIGINT, lambda *_: None)
    # bwrap itself dies of SIGINT: it gets a process group of its own and we pass
    # interrupts on (it still dies with us, by the parent-death signal).
    # What the kernel writes to its own stdout goes nowhere (outputs travel as messages).
    child, group = sandbox_process.start(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(kernel_conn), *kernel_args], limits, private,
        os.getcwd(),  # nbclient starts us in the notebook's folder
        mounts, extra_env, name="kernel", process_group=0 if p.bwrap else None, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = threading.Event()
    threading.Thread(target=_forward_stderr, args=(child.stderr, started), daemon=True).start()
    if p.bwrap:
        signal.signal(signal.SIGINT, lambda *_: _interrupt(child))
    signal.signal(signal.SIGTERM, lambda *_: child.kill())

    try:
        ctx = zmq.Context()
        screens = _screens(limits, client)
        for i, (name, (front_type, back_type)) in enumerate(CHANNELS.items(), start=1):
            front, back = ctx.socket(front_type), ctx.socket(back_type)
            front.bind(_address(client["transport"], client["ip"], client[f"{name}_port"]))
            if back_type == zmq.DEALER:
                back.setsockopt(zmq.IDENTITY, RELAY_IDENTITY)
            back.connect(f"ipc://{private}/k-{i}")
            threading.Thread(target=_relay, args=(front, back, screens.get(name), started), daemon=True).start()
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
    finally:
        if group is not None:
            group.remove()  # and with it whatever the kernel left running
    return status if status >= 0 else 128 - status


def _screens(limits: SandboxLimits, client: dict) -> dict:
    """The kernel's iopub and shell messages pass through output caps (`jenalab.output_caps`)."""
    screen = Screen(client["key"].encode(), client["signature_scheme"], limits.output_bytes, limits.cell_output_bytes,
                    limits.notebook_output_bytes, limits.record_bytes, RECORD_MIME)
    return {"iopub": screen.iopub, "shell": screen.shell}


if __name__ == "__main__":
    sys.stdout.flush()
    # os._exit: the relay threads block in zmq.proxy and must not delay the exit.
    os._exit(main())
