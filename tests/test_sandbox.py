"""The grading sandbox, attacked for real: each test starts the real kernel through
jupyter_client (or nbgrader's own Execute preprocessor) and tries to break one limit.

Limits are small here so that the attacks fail fast.
"""

import errno
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets.config import Config

from jenalab.sandbox import GiB, KERNEL_NAME, MiB, SandboxLimits, active_protections, install_kernelspec

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox uses Linux rlimits and namespaces")

LIMITS = SandboxLimits(memory_bytes=2 * GiB, max_processes=64, file_size_bytes=64 * MiB,
                       open_files=256, cpu_seconds=600, wall_seconds=300)
PROTECTIONS = active_protections(LIMITS)
ISOLATED = "no network (own network namespace)" in PROTECTIONS
NPROC = f"max {LIMITS.max_processes} processes+threads" in PROTECTIONS
UNPRIVILEGED = any(p.startswith("runs as uid") for p in PROTECTIONS)

# What the kernel's random state looks like before any student code ran.
SEED_PROBE = ("import json, random, numpy, torch\n"
              "print(json.dumps([torch.rand(1).item(), numpy.random.rand(), random.random(), hash('jena')]))")


def spec_dir(tmp_path_factory, limits):
    """A Jupyter data dir holding only our kernelspec, with these limits."""
    data = tmp_path_factory.mktemp("jupyter")
    assert install_kernelspec(data, limits) == KERNEL_NAME
    return data


def run(kc, code, timeout=30):
    """Execute code; return (stdout, name of the error or None)."""
    out, errors = [], []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(msg["content"]["ename"])

    kc.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
    return "".join(out), (errors[0] if errors else None)


def value(kc, code):
    """Run code whose last line prints JSON; return the parsed value (fails on error)."""
    out, error = run(kc, code)
    assert error is None, (error, out)
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory):
    """Stands for nbgrader's autograded/<student>/<assignment>: root-owned, readable."""
    d = tmp_path_factory.mktemp("autograded")
    d.chmod(0o755)
    d.parent.chmod(0o755)
    (d / "data.txt").write_text("jena\n")
    (d / "data.txt").chmod(0o644)
    return d


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, notebook_dir):
    data = spec_dir(tmp_path_factory, LIMITS)
    km = KernelManager(kernel_name=KERNEL_NAME,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(data / "kernels")]))
    km.start_kernel(cwd=str(notebook_dir))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.first_seed_probe = value(kc, SEED_PROBE)  # before any other test draws numbers
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernelspec_runs_the_launcher(tmp_path):
    install_kernelspec(tmp_path, LIMITS)
    spec = json.loads((tmp_path / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "jenalab.sandbox_kernel"]
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    assert f"--memory_bytes={2 * GiB}" in spec["argv"]


def test_active_protections_report_every_limit():
    text = "\n".join(PROTECTIONS)
    for word in ("memory 2048 MiB", "64 MiB", "256 open files", "CPU time 600 s",
                 "killed after 300 s", "no core dumps", "compute threads: 2", "seeds fixed"):
        assert word in text


def test_memory_bomb_raises_memory_error(kernel):
    for bomb in ("x = bytearray(10 * 2**30)", "import numpy; x = numpy.ones(2**31)",
                 "import torch; x = torch.ones(2**31)"):
        out, error = run(kernel, bomb)
        assert error in ("MemoryError", "_ArrayMemoryError", "RuntimeError"), (bomb, error, out)
    assert value(kernel, "print(1 + 1)") == 2  # the kernel survived


@pytest.mark.skipif(not NPROC, reason="RLIMIT_NPROC cannot be enforced here")
def test_fork_bomb_is_stopped(kernel):
    forked, error = value(kernel, """
import json, os, signal
pids, error = [], None
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        pids.append(pid)
except OSError as e:
    error = type(e).__name__
for pid in pids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(json.dumps([len(pids), error]))
""")
    assert error == "BlockingIOError" and forked < LIMITS.max_processes


@pytest.mark.skipif(not NPROC, reason="RLIMIT_NPROC cannot be enforced here")
def test_thread_bomb_is_stopped(kernel):
    started, error = value(kernel, """
import json, threading
stop, threads, error = threading.Event(), [], None
try:
    for _ in range(1000):
        t = threading.Thread(target=stop.wait)
        t.start()
        threads.append(t)
except RuntimeError as e:
    error = str(e)
stop.set()
for t in threads:
    t.join()
print(json.dumps([len(threads), error]))
""")
    assert error == "can't start new thread" and started < LIMITS.max_processes


@pytest.mark.skipif(not ISOLATED, reason="no network namespace here")
def test_no_network(kernel):
    # A server on the grader's loopback: the kernel must not reach it ...
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        tried = value(kernel, f"""
import json, socket, time
result = {{}}
for host, port in (("127.0.0.1", {port}), ("10.255.255.1", 80), ("8.8.8.8", 53)):
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=5).close()
        result[host] = "connected"
    except OSError as e:
        result[host] = [e.errno, time.monotonic() - start]
print(json.dumps(result))
""")
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
    # ... nor anything outside, and it must fail at once (no route), not by timing out.
    for host, (code, seconds) in tried.items():
        assert code in (errno.ENETUNREACH, errno.ECONNREFUSED), (host, code)
        assert seconds < 1, host


def test_file_size_limit(kernel):
    written, code = value(kernel, """
import json, os, tempfile
path, code = os.path.join(tempfile.gettempdir(), "big"), None
try:
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(bytes(2**20))
except OSError as e:
    code = e.errno
size = os.path.getsize(path)
os.remove(path)
print(json.dumps([size, code]))
""")
    assert code == errno.EFBIG and written <= LIMITS.file_size_bytes


def test_private_dirs_and_files(kernel, notebook_dir):
    seen = value(kernel, f"""
import json, os, tempfile
probe = os.path.join(tempfile.gettempdir(), "probe")
open(probe, "w").write("x")
try:
    open({str(notebook_dir.parent / "escaped.txt")!r}, "w")
    outside = "written"
except OSError as e:
    outside = type(e).__name__
print(json.dumps(dict(cwd=os.getcwd(), data=open("data.txt").read(), tmp=tempfile.gettempdir(),
                      home=os.path.expanduser("~"), probe=probe, outside=outside, uid=os.getuid())))
""")
    assert seen["cwd"] == str(notebook_dir) and seen["data"] == "jena\n"
    private = os.path.dirname(seen["tmp"])
    assert os.path.basename(private).startswith("jenalab-sandbox-")
    assert seen["tmp"] != tempfile.gettempdir() and os.path.dirname(seen["home"]) == private
    assert os.path.exists(seen["probe"])  # the kernel can write its own TMPDIR
    if UNPRIVILEGED:
        assert seen["uid"] != 0 and seen["outside"] == "PermissionError"
        assert not (notebook_dir.parent / "escaped.txt").exists()


@pytest.mark.skipif(not ISOLATED, reason="no PID namespace here")
def test_grader_processes_are_out_of_reach(kernel):
    found = value(kernel, f"""
import json, os, signal
try:
    os.kill({os.getpid()}, signal.SIGTERM)
    found = "signalled"
except OSError as e:
    found = type(e).__name__
print(json.dumps(found))
""")
    assert found == "ProcessLookupError"


def test_threads_rlimits_and_hash_seed(kernel):
    seen = value(kernel, """
import json, os, resource, torch
print(json.dumps(dict(
    torch=torch.get_num_threads(), omp=os.environ["OMP_NUM_THREADS"], hashseed=os.environ["PYTHONHASHSEED"],
    limits={name: resource.getrlimit(getattr(resource, name))[1]
            for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_CORE")})))
""")
    assert seen["torch"] == 2 and seen["omp"] == "2" and seen["hashseed"] == "0"
    assert seen["limits"] == {"RLIMIT_AS": 2 * GiB, "RLIMIT_FSIZE": 64 * MiB, "RLIMIT_NOFILE": 256,
                              "RLIMIT_CPU": 600, "RLIMIT_CORE": 0}


def graded(tmp_path_factory, monkeypatch, limits, sources, timeout):
    """Execute sources as `nbgrader autograde` would: nbgrader's Execute preprocessor,
    configured only by `Execute.kernel_name`, on a notebook whose metadata names python3."""
    monkeypatch.setenv("JUPYTER_PATH", str(spec_dir(tmp_path_factory, limits)))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute = Execute(config=Config({"Execute": {"kernel_name": KERNEL_NAME, "timeout": timeout}}))
    path = tmp_path_factory.mktemp("notebook")
    return nb, lambda: execute.preprocess(nb, {"metadata": {"path": str(path)}})


def outputs(cell):
    return "".join(o.get("text", "") + o.get("ename", "") for o in cell.outputs)


# A cell that leaves a process behind, out of the kernel's process group, and prints the
# kernel's private TMPDIR, which that process also has in its environment.
SPAWN_ORPHAN = ("import os, subprocess\n"
                "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                "print(os.environ['TMPDIR'])")


def assert_nothing_left(private_tmp):
    """Once the kernel is dead, no process of its sandbox lives on and its dir is gone."""
    private_tmp = private_tmp.strip()
    assert private_tmp.startswith(tempfile.gettempdir())
    deadline = time.monotonic() + 5
    while True:
        alive = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if f"TMPDIR={private_tmp}\0".encode() in environ.read_bytes():
                    alive.append(environ.parent.name)
            except OSError:
                pass  # gone meanwhile
        if (not alive and not os.path.exists(private_tmp)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert alive == [] and not os.path.exists(private_tmp)


def test_timeout_interrupts_then_seeds_match_then_exit_is_a_dead_kernel(
        kernel, tmp_path_factory, monkeypatch):
    nb, execute = graded(tmp_path_factory, monkeypatch, LIMITS, [
        SEED_PROBE, "while True: pass", "print('after the timeout')", SPAWN_ORPHAN,
        "import os; os._exit(1)", "print('never')"], timeout=2)
    start = time.monotonic()
    with pytest.raises(DeadKernelError):
        execute()
    assert time.monotonic() - start < 30
    # Same seeds in a fresh kernel as in the first one.
    assert json.loads(outputs(nb.cells[0])) == kernel.first_seed_probe
    # The endless cell was interrupted and grading went on with the next cell.
    assert "CellTimeoutError" in outputs(nb.cells[1]) or "KeyboardInterrupt" in outputs(nb.cells[1])
    assert outputs(nb.cells[2]) == "after the timeout\n"
    assert outputs(nb.cells[5]) == ""
    assert_nothing_left(outputs(nb.cells[3]))


def test_wall_clock_limit_kills_the_kernel(tmp_path_factory, monkeypatch):
    limits = SandboxLimits(memory_bytes=2 * GiB, wall_seconds=8)
    nb, execute = graded(tmp_path_factory, monkeypatch, limits,
                         [SPAWN_ORPHAN, "import time; time.sleep(120)"], timeout=120)
    start = time.monotonic()
    with pytest.raises(DeadKernelError):
        execute()
    assert time.monotonic() - start < 20
    assert_nothing_left(outputs(nb.cells[0]))


def test_cpu_time_limit_kills_a_busy_kernel(tmp_path_factory, monkeypatch):
    # Starting the kernel (importing torch) costs a few CPU seconds of the 8.
    limits = SandboxLimits(memory_bytes=2 * GiB, cpu_seconds=8, wall_seconds=120)
    nb, execute = graded(tmp_path_factory, monkeypatch, limits,
                         [SPAWN_ORPHAN, "while True: pass"], timeout=120)
    start = time.monotonic()
    with pytest.raises(DeadKernelError):
        execute()
    assert time.monotonic() - start < 30
    assert_nothing_left(outputs(nb.cells[0]))


@pytest.mark.parametrize("limits", [SandboxLimits(isolate=False), SandboxLimits(sandbox_uid=None)],
                         ids=["no-namespaces", "user-namespace"])
def test_weaker_modes_still_start_and_say_what_they_lack(limits, tmp_path_factory, monkeypatch):
    isolated = "no network (own network namespace)" in active_protections(limits)
    assert isolated or "NO network isolation" in " ".join(active_protections(limits))
    if not limits.isolate:
        assert not isolated
    with socket.create_server(("127.0.0.1", 0)) as server:
        nb, execute = graded(tmp_path_factory, monkeypatch, limits, [f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=5).close()
    print("reached the grader")
except OSError:
    print("cut off")"""], timeout=60)
        execute()
    assert outputs(nb.cells[0]) == ("cut off\n" if isolated else "reached the grader\n")
