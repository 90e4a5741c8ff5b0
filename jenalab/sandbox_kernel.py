"""Launcher of the sandboxed grading kernel (see `jenalab.sandbox`).

    python -m jenalab.sandbox_kernel [--<limit>=<json> ...] -f CONNECTION_FILE [kernel args]

It stays outside the sandbox: it binds the ports named in CONNECTION_FILE, as a kernel
would, and relays each ZMQ channel to the real kernel, which listens on unix sockets in
its private dir (unix sockets are files, so they cross the network namespace).  It exits
with the kernel's status, so jupyter_client sees a dead kernel as a dead process.
"""

from __future__ import annotations

import argparse
import ctypes
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

from jenalab.sandbox import Plan, SandboxLimits, plan

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
def _jenalab_sandbox_start(seed={seed}, threads={threads}):
    import random, sys
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


def _prepare(private: Path, limits: SandboxLimits, client: dict, owner) -> tuple[Path, dict]:
    """Private dirs, startup file and the kernel's own connection file; returns it and env."""
    dirs = {name: private / name for name in ("home", "tmp", "ipython")}
    startup = dirs["ipython"] / "profile_default" / "startup"
    startup.mkdir(parents=True)
    dirs["home"].mkdir()
    dirs["tmp"].mkdir()
    (startup / "00-jenalab-sandbox.py").write_text(
        STARTUP.format(seed=limits.seed, threads=limits.cpu_threads))
    kernel_conn = private / "kernel.json"
    kernel_conn.write_text(json.dumps({
        "transport": "ipc", "ip": str(private / "k"),
        **{f"{name}_port": i for i, name in enumerate(CHANNELS, start=1)},
        "key": client["key"], "signature_scheme": client["signature_scheme"],
    }))
    if owner:
        for path in [private, *private.rglob("*")]:
            os.chown(path, *owner)
    threads = str(limits.cpu_threads)
    env = dict(os.environ, HOME=str(dirs["home"]), TMPDIR=str(dirs["tmp"]),
               IPYTHONDIR=str(dirs["ipython"]), PYTHONHASHSEED="0", OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    return kernel_conn, env


def _limit_child(limits: SandboxLimits, p: Plan) -> None:
    """Runs in the forked child before exec (no threads have been started yet)."""
    if sys.platform == "linux":  # if the launcher dies (even by SIGKILL), so does the kernel
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", dest="connection_file", required=True)
    SandboxLimits.add_arguments(parser)
    args, kernel_args = parser.parse_known_args(argv)
    limits = SandboxLimits(**{k: v for k, v in vars(args).items() if k != "connection_file"})
    client = json.loads(Path(args.connection_file).read_text())
    p = plan(limits)

    private = Path(tempfile.mkdtemp(prefix="jenalab-sandbox-"))
    # jupyter_client may SIGKILL our whole process group: a helper in its own session
    # removes the private dir (student files) once our end of its stdin closes.
    cleaner = subprocess.Popen(  # noqa: F841 (its stdin must stay open until we exit)
        [sys.executable, "-c", CLEANUP, str(private)], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kernel_conn, env = _prepare(private, limits, client, p.owner)
    if not any(a.startswith("--HistoryManager.hist_file") for a in kernel_args):
        kernel_args.append("--HistoryManager.hist_file=:memory:")
    # A no-op handler rather than SIG_IGN: the kernel must still get the interrupts
    # that jupyter_client sends to the whole process group (handlers reset on exec).
    signal.signal(signal.SIGINT, lambda *_: None)
    child = subprocess.Popen(
        [*p.wrapper, sys.executable, "-m", "ipykernel_launcher", "-f", str(kernel_conn),
         *kernel_args],
        env=env, preexec_fn=lambda: _limit_child(limits, p))
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
