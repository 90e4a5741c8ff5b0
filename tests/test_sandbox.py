"""The grading sandbox, attacked for real: each test starts the real kernel through
jupyter_client (or nbgrader's own Execute preprocessor) and tries to break one protection.

Limits are small here so that the attacks fail fast.  The attacks on files live in
sandbox_driver.py, which also runs them with the worker venv's Python (this project
installed normally), as root and as an unprivileged user (the non-root mode).
"""

import dataclasses
import errno
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets.config import Config

from jenalab.sandbox import (GiB, KERNEL_NAME, MiB, Mount, SandboxLimits, active_protections, filesystem_isolated,
                             install_kernelspec)
from sandbox_driver import (FORK_BOMB, IDENTITY, IMPORTS, host_traces, read_attack, run, start_kernel, stop_kernel,
                            value, write_attack)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox uses Linux rlimits and namespaces")

LIMITS = SandboxLimits(memory_bytes=2 * GiB, max_processes=64, file_size_bytes=16 * MiB, tmpfs_bytes=48 * MiB,
                       open_files=256, cpu_seconds=600, wall_seconds=300)
PROTECTIONS = active_protections(LIMITS)
ISOLATED = "no network (own network namespace)" in PROTECTIONS
NPROC = f"max {LIMITS.max_processes} processes+threads" in PROTECTIONS
TREE = "(control group)" in " ".join(PROTECTIONS)
ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]
WORKER_VENV = REPO / ".venv-worker"  # a Python any uid may run, with this project installed
MARKER = "JENALAB_TEST_LAUNCHER_SECRET"  # in the launcher's environment only
WHITELIST = {"HOME", "TMPDIR", "IPYTHONDIR", "PATH", "LANG", "LC_ALL", "PYTHONHASHSEED",
             "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}

# What the kernel's random state looks like before any student code ran.
SEED_PROBE = ("import json, random, numpy, torch\n"
              "print(json.dumps([torch.rand(1).item(), numpy.random.rand(), random.random(), hash('jena')]))")


def require(ok: bool, reason: str) -> None:
    """Skip a test this machine cannot run; in CI (where it must run) fail it instead."""
    if not ok:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)


def require_filesystem_isolation() -> None:
    require(filesystem_isolated(LIMITS), f"no filesystem isolation here: {PROTECTIONS[0]}")


def make_target(base: Path, home: Path) -> dict:
    """What the attacks aim at, made in base (which every uid may read, so that only the
    sandbox stops them): a course folder, a file in home, the notebook's folder (the
    kernel's cwd) and two mounts; as the JSON that sandbox_driver.py takes."""
    token = uuid.uuid4().hex
    secrets = {
        base / "course/source/lstm_jena/lstm_jena.ipynb": f"### BEGIN SOLUTION {token}-solution",
        base / "course/submitted/other_student/lstm_jena/lstm_jena.ipynb": f"{token}-other-student",
        base / "course/gradebook.db": f"{token}-gradebook",
        base / "course/grader_tests/thresholds.json": json.dumps({"token": f"{token}-thresholds"}),
        base / "course/jena_data/cache.csv": f"{token}-data-cache",
        home / f".jenalab-sandbox-test-{token}": f"{token}-home",
    }
    cwd, ro, rw = base / "notebook", base / "ro", base / "rw"
    for d in (cwd / "helpers", ro, rw):
        d.mkdir(parents=True)
    (cwd / "data.txt").write_text("jena\n")
    (cwd / "helpers" / "helper.py").write_text("x = 1\n")
    (ro / "data.txt").write_text("read-only data\n")
    for path, text in secrets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    course = base / "course"
    victims = [*(str(p) for p in secrets if course in p.parents), str(cwd / "data.txt"), str(ro / "data.txt"),
               "/data/ro/data.txt"]
    # Links beside the notebook: one works in the sandbox too, one points out of it.
    (cwd / "data-link").symlink_to("data.txt")
    solution = next(iter(secrets))
    (cwd / "solution-link").symlink_to(solution)
    secrets[cwd / "solution-link"] = secrets[solution]
    for path in base.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dict(
        cwd=str(cwd), rw=str(rw),
        secrets={str(p): text for p, text in secrets.items()},
        folders=[str(course), str(course / "submitted"), str(course / "grader_tests"), str(ro)],
        victims=victims,
        sealed=[str(course / "grader_tests"), str(cwd / "helpers"), "/data/ro"],
        writable=["JENALAB_EVIDENCE"],
        mounts=[dataclasses.asdict(m) for m in (Mount(str(ro), "/data/ro"), Mount(str(rw), "/data/evidence", True))],
        env={"JENALAB_EVIDENCE": "/data/evidence"},
    )


def untouched(target: dict) -> dict:
    """The victims' contents on the host as long as no attack succeeded (None: not a host file)."""
    ro = target["mounts"][0]["source"]
    return {**{p: text for p, text in target["secrets"].items() if p in target["victims"]},
            f"{target['cwd']}/data.txt": "jena\n", f"{ro}/data.txt": "read-only data\n", "/data/ro/data.txt": None}


def mounts_of(target: dict) -> list[Mount]:
    return [Mount(**m) for m in target["mounts"]]


def world_readable_dir(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def spec_dir(tmp_path_factory, limits, mounts=(), env={}):
    """A Jupyter data dir holding only our kernelspec, with these limits."""
    data = tmp_path_factory.mktemp("jupyter")
    assert install_kernelspec(data, limits, mounts, env) == KERNEL_NAME
    return data


@pytest.fixture(scope="module")
def target():
    base = world_readable_dir("jenalab-sandbox-test-")
    made = make_target(base, Path.home())
    yield made
    shutil.rmtree(base)
    for secret in made["secrets"]:
        Path(secret).unlink(missing_ok=True)  # the one in HOME


@pytest.fixture(scope="module")
def jupyter_dir(tmp_path_factory, target):
    return spec_dir(tmp_path_factory, LIMITS, mounts_of(target), target["env"])


@pytest.fixture(scope="module")
def kernel(jupyter_dir, target):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MARKER, "the grader's secret")  # jupyter_client passes it to the launcher
        km, kc = start_kernel(str(jupyter_dir), target["cwd"])
    try:
        kc.launcher_environ = Path(f"/proc/{km.provisioner.pid}/environ").read_bytes()
        kc.first_seed_probe = value(kc, SEED_PROBE)  # before any other test draws numbers
        yield kc
    finally:
        stop_kernel(km, kc)


def test_kernelspec_runs_the_launcher(tmp_path):
    install_kernelspec(tmp_path, LIMITS, [Mount("/srv/data", "/data")], {"DATA": "/data"})
    spec = json.loads((tmp_path / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "jenalab.sandbox_kernel"]
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    assert f"--memory_bytes={2 * GiB}" in spec["argv"] and f"--tmpfs_bytes={48 * MiB}" in spec["argv"]
    assert '--mounts=[{"source": "/srv/data", "target": "/data", "writable": false}]' in spec["argv"]
    assert '--env={"DATA": "/data"}' in spec["argv"]
    with pytest.raises(ValueError):
        install_kernelspec(tmp_path, LIMITS, [Mount("/srv/data", "data")])


def test_active_protections_report_every_limit():
    text = "\n".join(PROTECTIONS)
    for word in ("memory 2048 MiB", "16 MiB (RLIMIT_FSIZE)", "256 open files", "CPU time 600 s",
                 "killed after 300 s", "no core dumps", "compute threads: 2", "seeds fixed", "whitelist"):
        assert word in text
    if filesystem_isolated(LIMITS):
        assert PROTECTIONS[0].startswith("filesystem isolation (bubblewrap)") and "48 MiB each" in text
    else:
        assert PROTECTIONS[0].startswith("NO filesystem isolation (")


@pytest.mark.parametrize("limits, reason", [
    (SandboxLimits(bwrap=None), "bubblewrap switched off (bwrap=None)"),
    (SandboxLimits(bwrap="/nonexistent/bwrap"), "bubblewrap not installed"),
    (SandboxLimits(bwrap="false"), "bubblewrap cannot start: exit status 1"),  # a bwrap that fails
    (SandboxLimits(isolate=False), "namespaces switched off (isolate=False)"),
], ids=["switched-off", "not-installed", "cannot-start", "no-namespaces"])
def test_without_bubblewrap_the_protections_say_so_loudly(limits, reason):
    assert not filesystem_isolated(limits)
    assert active_protections(limits)[0] == \
        f"NO filesystem isolation ({reason}): the kernel can read every file this user can"


def test_memory_bomb_raises_memory_error(kernel):
    for bomb in ("x = bytearray(10 * 2**30)", "import numpy; x = numpy.ones(2**31)",
                 "import torch; x = torch.ones(2**31)"):
        out, error = run(kernel, bomb)
        assert error in ("MemoryError", "_ArrayMemoryError", "RuntimeError"), (bomb, error, out)
    assert value(kernel, "print(1 + 1)") == 2  # the kernel survived


@pytest.mark.skipif(not NPROC, reason="RLIMIT_NPROC cannot be enforced here")
def test_fork_bomb_is_stopped(kernel):
    forked, error = value(kernel, FORK_BOMB)
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


def test_the_whole_process_tree_shares_one_memory_limit(kernel):
    """Three processes of 900 MiB each under a 2 GiB limit: per-process limits would let all of them live;
    the kernel's control group does not (the kernel itself survives)."""
    require(TREE, "no control group can be made here")
    codes = value(kernel, """
import json, subprocess, sys, time
hog = "x = bytearray(900 * 2**20); x[::4096] = b'x' * len(x[::4096]); import time; time.sleep(60)"
holders = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(3)]
time.sleep(10)
codes = [h.poll() for h in holders]
for h in holders:
    h.kill()
print(json.dumps(codes))
""")
    assert -9 in codes and codes.count(None) <= 2, codes
    assert value(kernel, "print(1 + 1)") == 2


def test_the_whole_process_tree_shares_one_process_limit(kernel):
    """Processes that each start threads: RLIMIT_NPROC would count per uid only where the uid is the
    kernel's own; the control group counts the whole tree in every mode."""
    require(TREE, "no control group can be made here")
    started = value(kernel, """
import json, subprocess, sys, time
spawner = "import threading, time\\nfor _ in range(40):\\n    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\\ntime.sleep(30)"
children = []
for _ in range(8):
    try:
        children.append(subprocess.Popen([sys.executable, "-c", spawner], stderr=subprocess.DEVNULL))
    except OSError:
        break
time.sleep(5)
tasks = sum(len(__import__("os").listdir(f"/proc/{c.pid}/task")) for c in children if c.poll() is None)
for c in children:
    c.kill()
print(json.dumps(tasks))
""")
    assert started < LIMITS.max_processes


def test_outputs_over_the_caps_are_replaced_by_a_note_before_the_client_sees_them(kernel):
    out, error = run(kernel, "print('x' * (3 * 2**20)); print('small')")
    assert error is None and "one output was larger than 2 MiB" in out and "small" in out and len(out) < 10_000
    # 1 MiB each, each its own message: the cell's cap is 4 MiB
    out, _ = run(kernel, "import sys, time\nfor _ in range(6):\n    print('y' * 2**20, flush=True)\n    time.sleep(0.3)")
    assert out.count("y" * 2**20) == 3 and out.count("this cell's output went over 4 MiB") == 1, len(out)


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


def test_writable_dirs_are_capped_tmpfs(kernel):
    require_filesystem_isolation()
    filled = value(kernel, """
import json, os
filled = {}
for folder in ("/tmp", os.environ["HOME"], "."):
    total, code = 0, None
    try:
        for i in range(100):  # files below the file size limit, until the tmpfs is full
            with open(os.path.join(folder, f"fill{i}"), "wb") as f:
                for _ in range(15):
                    f.write(bytes(2**20))
                    total += 2**20
    except OSError as e:
        code = e.errno
    for name in os.listdir(folder):
        if name.startswith("fill"):
            os.remove(os.path.join(folder, name))
    filled[folder] = [total, code]
print(json.dumps(filled))
""")
    for folder, (total, code) in filled.items():
        assert code == errno.ENOSPC and total <= LIMITS.tmpfs_bytes, folder


def test_working_dir_home_and_tmp(kernel, target):
    seen = value(kernel, """
import json, os, tempfile
open(os.path.join(tempfile.gettempdir(), "probe"), "w").write("x")
open(os.path.expanduser("~/probe"), "w").write("x")
print(json.dumps(dict(cwd=os.getcwd(), data=open("data-link").read(), helper=open("helpers/helper.py").read(),
                      tmp=tempfile.gettempdir(), home=os.path.expanduser("~"))))
""")
    assert seen["cwd"] == target["cwd"] and seen["data"] == "jena\n" and seen["helper"] == "x = 1\n"
    if filesystem_isolated(LIMITS):
        assert seen["tmp"] == "/tmp" and seen["home"] == "/home/student"
        assert not Path("/home/student/probe").exists()


def test_kernel_cannot_find_or_read_host_files(kernel, target):
    require_filesystem_isolation()
    if ROOT:  # their permissions alone would let an unprivileged uid read them
        for secret in target["secrets"]:
            if not secret.startswith(str(Path.home())):
                subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", secret],
                               check=True, capture_output=True)
    found = value(kernel, read_attack(target["secrets"], target["folders"]))
    assert found["found"] == []
    assert {way: outcome for way, outcome in found["reads"].items() if outcome == "ok"} == {}
    # /root holds at most the way to a Python installed there (pyenv), nothing of the host's.
    pythons = (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable))
    assert set(found["root"]) <= {Path(p).parts[2] for p in pythons if p.startswith("/root/")}


def test_kernel_writes_only_where_it_may(kernel, target):
    require_filesystem_isolation()
    writes = value(kernel, write_attack(target["victims"], target["sealed"], target["writable"]))
    traces = host_traces(target)
    assert [(how, what) for how in ("append", "unlink", "plant") for what, o in writes[how].items() if o == "ok"] == []
    assert writes["cwd"] == ["ok", "ok"] and writes["writable"] == ["ok"]
    assert traces["victims"] == untouched(target)
    assert traces["planted"] == []  # neither in sealed folders nor in the host's notebook folder
    assert "planted-by-kernel" in traces["written"]
    if ROOT:  # written by the kernel's own uid
        assert (Path(target["rw"]) / "planted-by-kernel").stat().st_uid >= 200000


def test_second_kernel_sees_nothing_of_the_first(kernel, jupyter_dir, target):
    require_filesystem_isolation()
    first = value(kernel, """
import json, os
paths = ["/tmp/first", os.path.expanduser("~/first"), os.path.abspath("first"), "/dev/shm/first"]
for path in paths:
    open(path, "w").write("first kernel")
print(json.dumps(dict(paths=paths, private=os.path.dirname(os.environ["IPYTHONDIR"]), uid=os.getuid())))
""")
    km, second = start_kernel(str(jupyter_dir), target["cwd"])
    try:
        seen = value(second, f"""
import json, os
import sys
print(json.dumps(dict(exist=[p for p in {first["paths"] + [first["private"]]!r} if os.path.lexists(p)],
                      tmp=os.listdir("/tmp"), private=os.path.dirname(os.environ["IPYTHONDIR"]), uid=os.getuid(),
                      python=[sys.prefix, sys.base_prefix])))
""")
    finally:
        stop_kernel(km, second)
    assert seen["exist"] == []
    # In /tmp: only the way to the working dir, its own private dir, its Python and its mounts.
    ways = [target["cwd"], seen["private"], *seen["python"], *(m["target"] for m in target["mounts"])]
    assert set(seen["tmp"]) == {Path(p).parts[2] for p in ways if p.startswith("/tmp/")}
    if ROOT:
        assert seen["uid"] != first["uid"]


def test_instructor_packages_cannot_be_imported(kernel):
    require_filesystem_isolation()
    assert set(value(kernel, IMPORTS).values()) == {"ModuleNotFoundError"}


def test_environment_is_a_whitelist(kernel, target):
    assert MARKER.encode() in kernel.launcher_environ  # what the kernel must not get
    env = value(kernel, IDENTITY)
    assert MARKER not in env["env"] and MARKER not in env["start_env"]
    assert set(env["start_env"]) - {"PWD"} == WHITELIST | set(target["env"])  # bwrap sets PWD
    assert env["start_env"]["PYTHONHASHSEED"] == "0"
    assert env["start_env"]["JENALAB_EVIDENCE"] == ("/data/evidence" if filesystem_isolated(LIMITS) else target["rw"])


def test_kernel_is_unprivileged_without_any_capability(kernel):
    require(ROOT, "the kernel runs as the invoking user")
    require_filesystem_isolation()
    identity = value(kernel, IDENTITY)
    assert identity["uid"] >= 200000 and identity["gid"] == identity["uid"]
    assert identity["caps"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)


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
    assert seen["limits"] == {"RLIMIT_AS": 2 * GiB, "RLIMIT_FSIZE": 16 * MiB, "RLIMIT_NOFILE": 256,
                              "RLIMIT_CPU": 600, "RLIMIT_CORE": 0}


def graded(tmp_path_factory, monkeypatch, limits, sources, timeout, mounts=(), env={}):
    """Execute sources as `nbgrader autograde` would: nbgrader's Execute preprocessor,
    configured only by `Execute.kernel_name`, on a notebook whose metadata names python3."""
    monkeypatch.setenv("JUPYTER_PATH", str(spec_dir(tmp_path_factory, limits, mounts, env)))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute = Execute(config=Config({"Execute": {"kernel_name": KERNEL_NAME, "timeout": timeout}}))
    path = tmp_path_factory.mktemp("notebook")
    return nb, lambda: execute.preprocess(nb, {"metadata": {"path": str(path)}})


def outputs(cell):
    return "".join(o.get("text", "") + o.get("ename", "") for o in cell.outputs)


# A cell that leaves a process behind, out of the kernel's process group, and prints the
# kernel's IPYTHONDIR (in its private dir), which that process also has in its environment.
SPAWN_ORPHAN = ("import os, subprocess\n"
                "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                "print(os.environ['IPYTHONDIR'])")


def assert_nothing_left(ipythondir):
    """Once the kernel is dead, no process of its sandbox lives on and its private dir is gone."""
    ipythondir = ipythondir.strip()
    private = os.path.dirname(ipythondir)
    assert os.path.basename(private).startswith("jenalab-sandbox-")
    deadline = time.monotonic() + 5
    while True:
        alive = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if f"IPYTHONDIR={ipythondir}\0".encode() in environ.read_bytes():
                    alive.append(environ.parent.name)
            except OSError:
                pass  # gone meanwhile
        if (not alive and not os.path.exists(private)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert alive == [] and not os.path.exists(private)


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


def test_a_launcher_whose_starter_died_meanwhile_exits_instead_of_starting_a_kernel(tmp_path):
    from jupyter_client.connect import write_connection_file

    connection, _ = write_connection_file(str(tmp_path / "kernel.json"), ip="127.0.0.1")
    # jupyter_client names the process that started the launcher; here that is not its parent any more.
    launcher = subprocess.Popen([sys.executable, "-m", "jenalab.sandbox_kernel", *LIMITS.to_argv(), "-f", connection],
                                env={**os.environ, "JPY_PARENT_PID": "1"}, cwd=tmp_path)
    try:
        assert launcher.wait(timeout=60) == 1
    finally:
        launcher.kill()
        launcher.wait()


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


# Which mode each weaker configuration falls back to (as root, with bubblewrap installed).
WEAKER = {
    "no-namespaces": SandboxLimits(isolate=False),
    "unshare": SandboxLimits(bwrap=None),
    "unshare-user-namespace": SandboxLimits(bwrap=None, sandbox_uid=None),
    "bwrap-user-namespace": SandboxLimits(sandbox_uid=None),
}


@pytest.mark.parametrize("mode", WEAKER)
def test_weaker_modes_still_start_and_say_what_they_lack(mode, target, tmp_path_factory, monkeypatch):
    limits = WEAKER[mode]
    protections = active_protections(limits)
    isolated = "no network (own network namespace)" in protections
    assert isolated or "NO network isolation" in " ".join(protections)
    if not limits.isolate:
        assert not isolated
    if not filesystem_isolated(limits):
        assert protections[0].startswith("NO filesystem isolation (")
    if limits.sandbox_uid is None and ROOT:  # root mapped into a user namespace: RLIMIT_NPROC does not hold
        tree = [p for p in protections if p.endswith("(control group)")]
        assert tree and f"at most {limits.max_processes} processes+threads" in tree[0] or "NO process limit" in protections
    monkeypatch.setenv(MARKER, "the grader's secret")
    with socket.create_server(("127.0.0.1", 0)) as server:
        nb, execute = graded(tmp_path_factory, monkeypatch, limits, [f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=5).close()
    print("reached the grader")
except OSError:
    print("cut off")""", f"""
import json, os
evidence = os.environ["JENALAB_EVIDENCE"]
open(os.path.join(evidence, "{mode}.txt"), "w").write("evidence")
print(json.dumps(dict(marker="{MARKER}" in os.environ, evidence=evidence)))"""],
                             timeout=60, mounts=mounts_of(target), env=target["env"])
        execute()
    assert outputs(nb.cells[0]) == ("cut off\n" if isolated else "reached the grader\n")
    seen = json.loads(outputs(nb.cells[1]))
    assert not seen["marker"]
    # Without a mount namespace the kernel is told the mount's host path instead.
    assert seen["evidence"] == ("/data/evidence" if filesystem_isolated(limits) else target["rw"])
    assert (Path(target["rw"]) / f"{mode}.txt").read_text() == "evidence"


def unprivileged_user() -> tuple[int, int]:
    """uid and gid of the non-root test: $JENALAB_TEST_USER (.ci/run's jenalab-ci, who may
    run a Python that lives under /root), else uid 4242."""
    try:
        user = pwd.getpwnam(os.environ.get("JENALAB_TEST_USER", "jenalab-ci"))
        return user.pw_uid, user.pw_gid
    except KeyError:
        return 4242, 4242


@pytest.mark.parametrize("who", ["root", "user"])
def test_kernel_of_an_installed_worker_hides_it_and_keeps_the_users_files(who):
    """The driver runs the attacks with the worker venv's Python, where this project is
    installed normally (so its packages lie in the kernel's site-packages, to be hidden).
    As root: the privileged mode.  As an ordinary user: bubblewrap's user-namespace mode,
    in which the kernel can neither read nor overwrite that user's files outside its
    mounts; the same attacks do both without bubblewrap (the hole this closed)."""
    require(ROOT, "only root can run the driver as another uid")
    require_filesystem_isolation()
    python = WORKER_VENV / "bin" / "python"
    require((WORKER_VENV / ".installed").exists(), f"{WORKER_VENV} (this project installed normally) is not ready")
    uid, gid = unprivileged_user() if who == "user" else (0, 0)
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] if who == "user" else []
    # Through sh: setpriv itself may still exec what the uid alone could not reach.
    require(subprocess.run([*as_user, "sh", "-c", f"exec {python} -c ''"], capture_output=True).returncode == 0,
            f"uid {uid} cannot run {python} (which resolves to {os.path.realpath(python)}); "
            "set JENALAB_TEST_USER to a user who can, as .ci/run does")
    base = world_readable_dir("jenalab-sandbox-driver-")
    try:
        home = base / "home"
        home.mkdir()
        target = make_target(base, home)
        for d in ("runtime", "tmp", "jupyter"):
            (base / d).mkdir()
        for path in [base, *base.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)  # all of it the user's own files
        limits = dataclasses.asdict(LIMITS)
        modes = {"bwrap": limits, **({"no-bwrap": {**limits, "bwrap": None}} if who == "user" else {})}
        # PYTHONPATH: the launcher runs this checkout's code, not the copy installed in
        # the worker venv, which the kernel must not see either.
        env = {"HOME": str(home), "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "TMPDIR": str(base / "tmp"),
               "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), MARKER: "the grader's secret"}
        done = subprocess.run([*as_user, str(python), str(Path(__file__).with_name("sandbox_driver.py")),
                               json.dumps(dict(jupyter_dir=str(base / "jupyter"), target=target, modes=modes))],
                              env=env, cwd=base, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-5000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(base)
    sandboxed = result["bwrap"]

    assert sandboxed["isolated"] and f"max {LIMITS.max_processes} processes+threads" in sandboxed["protections"]
    identity = sandboxed["identity"]
    assert identity["uid"] == uid if who == "user" else identity["uid"] >= 200000
    assert set(identity["caps"].values()) == {0}
    assert set(identity["start_env"]) - {"PWD"} == WHITELIST | set(target["env"]) and MARKER not in identity["env"]
    assert set(sandboxed["imports"].values()) == {"ModuleNotFoundError"}
    assert sandboxed["reads"]["found"] == [] and "ok" not in sandboxed["reads"]["reads"].values()
    forked, error = sandboxed["fork"]
    assert error == "BlockingIOError" and forked < LIMITS.max_processes
    writes = sandboxed["writes"]
    assert [(how, what) for how in ("append", "unlink", "plant") for what, o in writes[how].items() if o == "ok"] == []
    assert writes["cwd"] == ["ok", "ok"] and writes["writable"] == ["ok"]
    assert sandboxed["host"]["planted"] == [] and sandboxed["host"]["written"] == ["planted-by-kernel"]
    assert sandboxed["host"]["victims"] == untouched(target)
    if who == "root":
        return
    assert "runs as this user's uid in a user namespace, no capabilities" in sandboxed["protections"]
    control = result["no-bwrap"]
    assert not control["isolated"] and control["protections"][0].startswith("NO filesystem isolation (")
    for victim in (str(base / "course" / p) for p in ("grader_tests/thresholds.json", "jena_data/cache.csv")):
        # Without bubblewrap the kernel overwrites and deletes them.
        assert control["writes"]["append"][victim] == "ok" and control["writes"]["unlink"][victim] == "ok"
        assert control["host"]["victims"][victim] is None
