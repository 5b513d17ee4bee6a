"""Guard worker processes, driven from threads that only wait on pipes.

Each of GUARD_WORKERS threads owns one worker process (`pg_mcp.guard.worker`) and takes jobs from one
queue in arrival order. The statement's deadline starts when its worker receives it: time spent
waiting for a free worker is never counted as the statement's complexity. A worker that has not
answered by the deadline is killed (SIGKILL: nothing in it needs cleaning up) and the statement is
refused as too complex; its thread starts a fresh worker for the next job. A worker that ends
mid-check (a crash in a parser) refuses that statement; one found dead between jobs is replaced and
the job given to the new one. The threads run no parser, so nothing in the server ever has to be
interrupted.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pg_mcp.errors import GuardError
from pg_mcp.guard.frames import HEADER, frame, unframe
from pg_mcp.guard.policy import CheckedQuery, GuardPolicy
from pg_mcp.guard.rules import Rule

log = logging.getLogger(__name__)

#: Worker processes (and threads driving them): checks run at once; more wait their turn.
GUARD_WORKERS = 2
#: How long a new worker may take to load its parsers before it is given up on.
START_SECONDS = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)


@dataclass
class _Job:
    sql: object
    max_rows: int
    policy: GuardPolicy
    future: Future[CheckedQuery]


class _Late(Exception):
    """The worker did not answer by the deadline."""


class _Ended(Exception):
    """The worker's process ended (or its pipe broke) while checking."""


class _NotTaken(_Ended):
    """The worker's process had ended before the job could be sent."""


class _Worker:
    """One worker process and the policy it holds."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pg_mcp.guard.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,  # no terminal signal reaches it: it ends with its input, or killed
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._input = self.process.stdin.fileno()
        self._output = self.process.stdout.fileno()
        self.policy: GuardPolicy | None = None
        if self._receive(time.monotonic() + START_SECONDS) != ("ready",):
            raise _Ended

    def check(self, job: _Job) -> tuple[Any, ...]:
        same = job.policy is self.policy or job.policy == self.policy
        self._send((job.sql, job.max_rows, None if same else job.policy))
        self.policy = job.policy
        return self._receive(time.monotonic() + job.policy.max_parse_seconds)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _send(self, message: tuple[Any, ...]) -> None:
        data = memoryview(frame(message))
        try:
            while data:
                data = data[os.write(self._input, data) :]
        except OSError:
            raise _NotTaken from None

    def _receive(self, deadline: float) -> tuple[Any, ...]:
        (size,) = HEADER.unpack(self._read(HEADER.size, deadline))
        return unframe(self._read(size, deadline))

    def _read(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._output], [], [], remaining)[0]:
                raise _Late
            chunk = os.read(self._output, size)
            if not chunk:
                raise _Ended
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


class GuardPool:
    """The process-wide pool; threads and processes start with the first job (or `start`)."""

    def __init__(self, workers: int = GUARD_WORKERS) -> None:
        self._size = workers
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False

    def start(self) -> None:
        """Start the threads, each starting its worker at once (beside serving, not before it)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for number in range(self._size):
                threading.Thread(target=self._serve, name=f"pg-mcp-guard-{number}", daemon=True).start()
            atexit.register(self.stop)

    def submit(self, sql: object, max_rows: int, policy: GuardPolicy) -> Future[CheckedQuery]:
        self.start()
        future: Future[CheckedQuery] = Future()
        self._jobs.put(_Job(sql, max_rows, policy, future))
        return future

    def live_workers(self) -> int:
        with self._lock:
            return sum(1 for worker in self._workers if worker.process.poll() is None)

    def stop(self) -> None:
        """End every worker (at exit); no new one is started after this."""
        with self._lock:
            self._stopping = True
            workers, self._workers = list(self._workers), []
        for worker in workers:
            worker.kill()

    def _serve(self) -> None:
        worker = self._start_worker()
        while True:
            job = self._jobs.get()
            if not job.future.set_running_or_notify_cancel():
                continue
            worker = self._run(job, worker)

    def _run(self, job: _Job, worker: _Worker | None) -> _Worker | None:
        """Check one job; the worker to use for the next (None: start one then)."""
        for attempt in (1, 2):
            worker = worker if worker is not None and worker.process.poll() is None else self._start_worker()
            if worker is None:
                job.future.set_exception(_unavailable())
                return None
            try:
                answer = worker.check(job)
            except _Late:
                self._retire(worker)
                job.future.set_exception(too_complex())
                return self._start_worker()
            except _NotTaken:
                self._retire(worker)
                worker = None
                if attempt == 1:
                    continue
                job.future.set_exception(_unavailable())
                return None
            except _Ended:
                self._retire(worker)
                job.future.set_exception(
                    GuardError(
                        Rule.PARSE,
                        "The statement could not be analysed (the checking process ended), so it was refused.",
                        "Simplify the query: less nesting, fewer terms.",
                    )
                )
                return self._start_worker()
            if answer[0] == "ok":
                job.future.set_result(answer[1])
            else:
                job.future.set_exception(GuardError(Rule(answer[1]), answer[2], answer[3]))
            return worker
        return worker

    def _start_worker(self) -> _Worker | None:
        if self._stopping:
            return None
        try:
            worker = _Worker()
        except (_Late, _Ended, OSError) as error:
            if not self._stopping:
                log.error("a guard worker could not start (%s)", type(error).__name__)
            return None
        with self._lock:
            if self._stopping:
                worker.kill()
                return None
            self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)


def too_complex() -> GuardError:
    return GuardError(
        Rule.TOO_COMPLEX,
        "The statement took too long to analyse, so it was refused.",
        "Split the work into smaller, simpler queries.",
    )


def _unavailable() -> GuardError:
    return GuardError(
        Rule.PARSE,
        "The statement checker could not be started, so nothing was run.",
        "Try again in a moment; the server's log says why the checker did not start.",
    )


#: The server's pool.
POOL = GuardPool()
