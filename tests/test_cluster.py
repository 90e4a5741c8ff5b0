"""Grading on a real Dask cluster: `dask scheduler` and `dask worker` processes on the loopback
interface, one worker from a separate, ordinary (non-editable) install with a HOME of its own."""

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jenalab.corpus import load_corpus, scratch_course, write_submission
from jenalab.course import autograded_dir
from jenalab.store import LEDGER, load_result

COURSE = Path(__file__).resolve().parents[1]
CORPUS = {s.name: s for s in load_corpus(COURSE)}
MAIN_DASK = Path(sys.executable).with_name("dask")
WORKER_VENV = COURSE / ".venv-worker"
ON_CLUSTER = ("blank", "wrong_mode_many_to_many", "wrong_cross_entropy", "attack_batch_lookup")

pytestmark = pytest.mark.skipif(not WORKER_VENV.joinpath(".installed").is_file() and not os.environ.get("CI"),
                                reason="no separate worker environment (make .venv-worker/.installed)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and its workers as separate processes; stopped (killed) at the end."""

    def __init__(self, tmp: Path):
        self.tmp, self.processes, self.workers = tmp, [], {}
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._start([str(MAIN_DASK), "scheduler", "--host", "127.0.0.1", "--port",
                                      self.address.rsplit(":", 1)[1], "--no-dashboard"], dict(os.environ), "scheduler")

    def _start(self, argv, env, name, cwd=None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        process = subprocess.Popen(argv, env=env, cwd=cwd or self.tmp, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def add_worker(self, name: str, dask: Path = MAIN_DASK, env: dict | None = None) -> None:
        self.workers[name] = self._start([str(dask), "worker", self.address, "--name", name, "--nthreads", "1",
                                          "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                                          "--local-directory", str(self.tmp / name)],
                                         env if env is not None else dict(os.environ), name)

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from dask.distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(count, timeout=timeout)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.stop()


def installed_worker_env(tmp_path: Path) -> dict:
    """What a cluster image would give the worker: its own HOME and PATH, the data where the site keeps it."""
    home = tmp_path / "worker-home"
    home.mkdir()
    return {"HOME": str(home), "PATH": f"{WORKER_VENV / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
            **{k: os.environ[k] for k in ("JENA_DATA_MIRROR", "JENA_DATA_FILE", "JENA_DATA_NO_DOWNLOAD") if k in os.environ}}


def course_with(tmp_path: Path, names, students=None) -> Path:
    root = scratch_course(COURSE, tmp_path / "course")
    for i, name in enumerate(names):
        write_submission(CORPUS[name], COURSE, root, student=(students or names)[i])
    return root


JENALAB = str(Path(sys.executable).with_name("jenalab"))


def jenalab(*args, cwd, timeout=1800):
    return subprocess.run([JENALAB, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _words(messages: dict[str, str]) -> dict[str, str]:
    return {cell: re.sub(r"\d+(\.\d+)?", "#", text) for cell, text in messages.items()}


def test_a_cluster_with_an_installed_worker_grades_like_local_grading(cluster, graded, tmp_path):
    cluster.add_worker("editable")
    cluster.add_worker("installed", WORKER_VENV / "bin" / "dask", installed_worker_env(tmp_path))
    cluster.wait_for_workers(2)
    root = course_with(tmp_path, ON_CLUSTER)
    done = jenalab("grade", "--scheduler", cluster.address, cwd=root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "left out" not in done.stdout, done.stdout  # e.g. the installed worker has older code than the clone
    _, local, _ = graded
    workers = set()
    for student in ON_CLUSTER:
        result = load_result(root, student)
        assert result.scores == local[student].scores, student
        # The problems of the checks are drawn anew for every grading: messages may quote other drawn numbers.
        assert _words(result.messages) == _words(local[student].messages), student
        assert _figures_apart(result.flags) == _figures_apart(local[student].flags), student
        workers.add(result.worker.split(" on ")[0])
    assert len(workers) == 2, f"both workers should have graded: {workers}"


def _figures_apart(flags: list[str]) -> list[str]:
    """Flags without their measured figures (a forecast check's depend on the random order of the windows)."""
    return [re.sub(r"\d+(\.\d+)?", "#", flag) for flag in flags]


def test_a_worker_killed_mid_grading_loses_nothing_and_records_nothing_twice(cluster, tmp_path):
    cluster.add_worker("doomed")
    cluster.add_worker("survivor")
    cluster.wait_for_workers(2)
    students = [f"student{i}" for i in range(4)]
    root = course_with(tmp_path, ["blank"] * 4, students)
    run = subprocess.Popen([JENALAB, "grade", "--scheduler", cluster.address], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: _grading(cluster.workers["doomed"].pid), "the doomed worker never started grading")
    cluster.workers["doomed"].send_signal(signal.SIGKILL)
    output, _ = run.communicate(timeout=900)
    assert run.returncode == 0, output[-3000:]
    for student in students:
        assert (autograded_dir(root, student) / LEDGER).is_file()
        assert load_result(root, student).worker.startswith("tcp://"), student
        assert len(re.findall(rf"^\[\d+/\d+\] {student}\s", output, flags=re.M)) == 1, output  # graded once
    doomed = f"jenalab-grade-{cluster.workers['doomed'].pid}-"
    assert not list(Path(tempfile.gettempdir()).glob(f"{doomed}*")), "the survivor removes what the doomed worker left"
    left = _processes_in(doomed)
    assert not left, f"the kernel dies with its worker; left: {[_command_of(pid) for pid in left]}"


def test_grading_waits_for_a_worker_and_goes_on_with_one_that_joins_after_all_left(cluster, tmp_path):
    students = [f"student{i}" for i in range(3)]
    root = course_with(tmp_path, ["blank"] * 3, students)
    log = tmp_path / "grade.log"
    with open(log, "w") as out:
        run = subprocess.Popen([JENALAB, "grade", "--scheduler", cluster.address], cwd=root,
                               stdout=out, stderr=subprocess.STDOUT)
    _wait_for(lambda: "No Dask worker is connected" in log.read_text(), "grading did not say it waits for a worker")
    cluster.add_worker("first")
    _wait_for(lambda: _grading(cluster.workers["first"].pid), "the first worker never started grading")
    cluster.workers["first"].send_signal(signal.SIGKILL)  # its submission may run on no other worker
    cluster.add_worker("second")
    run.wait(timeout=900)
    output = log.read_text()
    assert run.returncode == 0, output[-3000:]
    for student in students:
        assert len(re.findall(rf"^\[\d+/\d+\] {student}\s", output, flags=re.M)) == 1, output  # graded once
    assert len({load_result(root, student).worker for student in students}) == 1, "all by the second worker"


def test_with_no_worker_grading_waits_then_leaves_every_submission_ungraded(cluster, tmp_path):
    root = course_with(tmp_path, ["blank"])
    done = jenalab("grade", "--scheduler", cluster.address, "--worker-wait", "3", cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no Dask worker that can grade was connected for 3 s" in done.stdout
    assert not (autograded_dir(root, "blank") / LEDGER).exists()


def test_a_scheduler_lost_mid_run_leaves_what_was_not_graded_ungraded_and_says_so(cluster, tmp_path):
    cluster.add_worker("only")
    cluster.wait_for_workers(1)
    students = ["student0", "student1"]
    root = course_with(tmp_path, ["blank"] * 2, students)
    log = tmp_path / "grade.log"
    with open(log, "w") as out:
        run = subprocess.Popen([JENALAB, "grade", "--scheduler", cluster.address], cwd=root,
                               stdout=out, stderr=subprocess.STDOUT)
    _wait_for(lambda: _grading(cluster.workers["only"].pid), "the worker never started grading")
    cluster.scheduler.send_signal(signal.SIGKILL)
    run.wait(timeout=300)
    output = log.read_text()
    assert run.returncode == 1, output[-3000:]
    assert "2 submission(s) NOT graded" in output and "connection to the Dask scheduler was lost" in output, output[-3000:]
    assert "Traceback" not in output
    assert not any((autograded_dir(root, student) / LEDGER).exists() for student in students)


def _wait_for(condition, failure: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)


def _processes_in(folder_prefix: str) -> list[str]:
    """Processes whose working directory lies in a scratch folder with this name prefix."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if folder_prefix in os.readlink(cwd):
                found.append(cwd.parent.name)
        except OSError:
            pass
    return found


def _command_of(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "(gone)"


def _grading(worker_pid: int) -> bool:
    """Whether this worker process runs a sandbox kernel (it grades a submission right now)."""
    pids = []
    for children in Path(f"/proc/{worker_pid}/task").glob("*/children"):
        try:
            pids += children.read_text().split()
        except OSError:
            pass
    for pid in pids:
        try:
            if b"jenalab.sandbox_kernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def test_a_worker_that_lacks_the_data_is_left_out_and_alone_grades_nothing(cluster, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JENA_DATA")}
    env.update(JENA_DATA_NO_DOWNLOAD="1", JENA_DATA_DIR=str(tmp_path / "empty"))
    cluster.add_worker("without-data", env=env)
    cluster.wait_for_workers(1)
    root = course_with(tmp_path, ["blank", "blank"], ["student0", "student1"])
    done = jenalab("grade", "--scheduler", cluster.address, cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 submission(s) NOT graded" in done.stdout
    assert "has no usable Jena data file" in done.stdout and "tcp://127.0.0.1:" in done.stdout
    assert not (autograded_dir(root, "student0") / LEDGER).exists()
    rows = list(csv.DictReader(open(root / "grades.csv")))
    assert all(row["auto_score"] == "" and row["reason"].startswith("NOT GRADED") for row in rows)
    cluster.add_worker("with-data")  # a good worker joins: it grades everything, the other stays out
    cluster.wait_for_workers(2)
    done = jenalab("grade", "--scheduler", cluster.address, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is left out: it has no usable Jena data file" in done.stdout
    assert all(load_result(root, s).total == 0 for s in ("student0", "student1"))


def test_a_scheduler_that_cannot_be_reached_is_a_clear_error(tmp_path):
    root = course_with(tmp_path, ["blank"])
    done = jenalab("grade", "--scheduler", f"tcp://127.0.0.1:{free_port()}", cwd=root, timeout=120)
    assert done.returncode == 2 and "Cannot reach the Dask scheduler" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "autograded" / "blank").exists()
