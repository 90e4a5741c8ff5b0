"""Hand submissions to Dask workers, local processes or any cluster given by its scheduler's address.

Workers may join at any time (batch jobs start when the queue allows) and leave at any time (a
walltime, a lost node). Each worker is checked once when it is first seen (`worker_problem`) and only
workers that passed get submissions; no more are handed out than they have threads, so a worker that
joins later gets the next one. A submission whose every allowed worker left is handed out again.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Iterator

from jenalab.course import CourseError
from jenalab.results import Infrastructure, Outcome
from jenalab.worker import Task, grade, worker_problem

SCHEDULER_TIMEOUT = 10  # seconds to reach a Dask scheduler before giving up
# A local worker's own memory: nbgrader, the records and the judges (about 0.5 GiB while grading). The student's kernel
# and the evaluator run in processes of their own, with limits of their own, and do not count here.
WORKER_MEMORY = "3GiB"
POLL_SECONDS = 2  # how often the scheduler is asked which workers joined or left
# The scheduler went away or stopped answering: the client cancels every future with "scheduler-connection-lost"
# (only the grader cancels futures otherwise, and it forgets them first).
SCHEDULER_LOST = (OSError, TimeoutError, concurrent.futures.CancelledError)


def grade_on_dask(task: Task, todo: list[tuple[str, bytes]], scheduler: str | None, local_workers: int,
                  worker_wait: float, log=print) -> Iterator[Outcome | Infrastructure]:
    """Outcomes as they finish, from the cluster at `scheduler` (or `local_workers` new local processes)."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise CourseError(f"Cannot reach the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT} s "
                              f"({err}). Is `dask scheduler` running there, and is the address right?") from None
    else:
        # Dask's nannies set their workers' thread variables (OMP_NUM_THREADS=1, ...) in this process's own
        # environment; put it back afterwards, or whatever this process starts later runs on one thread.
        caller_env = dict(os.environ)
        cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit=WORKER_MEMORY)
        client = Client(cluster)
    # Its reconnection attempts log tracebacks; a lost scheduler is reported with the submissions it leaves ungraded.
    client_log = logging.getLogger("distributed.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield from _Dispatch(client, task, worker_wait, log).run(todo)
    finally:
        client.close()
        client_log.setLevel(level)
        if cluster is not None:
            cluster.close()
            os.environ.clear()
            os.environ.update(caller_env)


class _Dispatch:
    def __init__(self, client, task: Task, worker_wait: float, log):
        self.client, self.task, self.worker_wait, self.log = client, task, worker_wait, log
        self.problems: dict[str, str | None] = {}  # every worker checked: None if it may grade, else why not
        self.present: dict[str, int] = {}  # the workers connected at the last look, with their threads
        self.run_id, self.attempts = uuid.uuid4().hex[:8], itertools.count()  # no two tasks share a key

    def usable(self) -> dict[str, int]:
        """The workers present that may grade, with their threads (those that joined are checked first)."""
        present = self.present = self.client.nthreads()
        new = [address for address in present if address not in self.problems]
        if new:
            try:
                answers = self.client.run(worker_problem, self.task, workers=new, on_error="return")
            except Exception:  # one of them left while being checked: the others are asked again next time
                answers = {}
            for address, answer in answers.items():
                problem = self.problems[address] = _run_problem(answer)
                if problem:
                    self.log(f"Worker {address} is left out: it {problem}.")
        return {address: threads for address, threads in present.items() if address in self.problems
                and self.problems[address] is None}

    def run(self, todo: list[tuple[str, bytes]]) -> Iterator[Outcome | Infrastructure]:
        self.pending = deque(todo)
        self.running = {}  # future -> (student, notebook, the workers it may run on); done ones until yielded
        try:
            yield from self._run()
        except SCHEDULER_LOST as err:
            lost = [student for student, _ in self.pending] + [student for student, _, _ in self.running.values()]
            detail = "" if isinstance(err, concurrent.futures.CancelledError) else f" ({type(err).__name__}: {err})"
            message = (f"the connection to the Dask scheduler was lost before it was graded{detail}; start the "
                       "scheduler again and rerun `jenalab grade`")
            yield from (Infrastructure(student, message) for student in lost)

    def _run(self) -> Iterator[Outcome | Infrastructure]:
        from dask.distributed import wait

        waiting_since = None
        while self.pending or self.running:
            usable = self.usable()
            for future, (student, data, allowed) in list(self.running.items()):
                if not future.done() and not allowed & usable.keys():  # every worker that may run it left
                    future.cancel()
                    del self.running[future]
                    self.pending.appendleft((student, data))
            if usable:
                waiting_since = None
            elif not self.running:
                refused = {a: p for a, p in self.problems.items() if a in self.present}
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    if not refused:
                        self.log(f"No Dask worker is connected: waiting up to {self.worker_wait:g} s for one to join.")
                if refused or time.monotonic() - waiting_since > self.worker_wait:
                    yield from (Infrastructure(student, self._no_worker(refused)) for student, _ in self.pending)
                    return
                time.sleep(POLL_SECONDS)
                continue
            self.hand_out(usable)
            try:
                done = wait(list(self.running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            self.hand_out(usable, finished=len(done))  # before the caller stores these: the workers go on
            for future in done:
                student, _, _ = self.running[future]
                try:
                    outcome = future.result()
                except SCHEDULER_LOST:
                    raise  # see run()
                except Exception as err:  # its workers kept dying (KilledWorker): the grader's failure
                    outcome = Infrastructure(student, f"no worker could finish grading it ({type(err).__name__}: {err})")
                del self.running[future]
                yield outcome

    def hand_out(self, usable: dict[str, int], finished: int = 0) -> None:
        """Submit waiting submissions while the usable workers have idle threads."""
        while self.pending and len(self.running) - finished < sum(usable.values()):
            student, data = self.pending[0]
            # The task travels with every submission rather than scattered once: a scattered copy dies with
            # its worker and takes every queued submission with it ("cancelled: already forgotten").
            future = self.client.submit(grade, self.task, student, data, pure=False, workers=list(usable),
                                        key=f"grade-{student}-{self.run_id}-{next(self.attempts)}")
            self.pending.popleft()
            self.running[future] = (student, data, frozenset(usable))

    def _no_worker(self, refused: dict[str, str | None]) -> str:
        if refused:
            return "no worker can grade: " + "; ".join(f"{a} {p}" for a, p in refused.items())
        return (f"no Dask worker that can grade was connected for {self.worker_wait:g} s (start workers with "
                "`dask worker <scheduler address>`, or wait longer with --worker-wait)")


def _run_problem(answer) -> str | None:
    """A worker's answer to `worker_problem`: None, a problem, or the error it raised instead."""
    if isinstance(answer, BaseException):
        return (f"cannot run the grader's own check ({type(answer).__name__}: {answer}); is the same version of this "
                "project installed there?")
    return answer
