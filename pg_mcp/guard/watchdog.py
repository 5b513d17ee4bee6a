"""Stops a guard check that runs past its deadline, whatever code it is in.

sqlglot's parser backtracks, and on some shapes its time grows exponentially with the nesting
(`ARRAY[ARRAY[...]]` twenty deep takes it minutes and gigabytes). Its compiled build (sqlglotc)
cannot be subclassed to look at the clock, and no token count bounds every such shape, so a
monitor thread raises `DeadlinePassed` inside a checking thread once its deadline has passed
(CPython's `PyThreadState_SetAsyncExc`). The exception arrives at the next Python-level step of
that thread: sqlglot's compiled code takes such steps all the time (every token-type lookup hashes
a Python enum), and pure-Python code takes nothing else. It derives from BaseException, so that no
`except Exception` inside a parser can swallow it.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_API = ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
_raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(_API)
#: The same function with NULL for the exception: withdraws one raised but not yet delivered.
_withdraw = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(_API)


class DeadlinePassed(BaseException):
    """Raised inside a watched thread whose deadline has passed."""


#: How often the exception is raised again while a thread stays past its deadline: C code that
#: calls Python code (a dict lookup hashing an enum) may clear an exception raised inside it.
RAISE_AGAIN_SECONDS = 0.05


class _Monitor:
    """One daemon thread that sleeps until the next moment one of the threads it watches is due."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Per watched thread, when the exception is next raised in it: its deadline, then every
        #: RAISE_AGAIN_SECONDS until it stops being watched.
        self._due: dict[int, float] = {}
        self._raised: set[int] = set()
        self._wake = threading.Event()
        #: When the monitor next looks by itself: a later deadline need not wake it (most calls end
        #: long before theirs, so it wakes about once per deadline's length, not once per check).
        self._looks_at = float("inf")
        self._thread: threading.Thread | None = None

    def watch(self, thread_id: int, deadline: float) -> None:
        with self._lock:
            self._due[thread_id] = deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pg-mcp-guard-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._looks_at:
                self._looks_at = deadline
                self._wake.set()

    def release(self, thread_id: int) -> None:
        """Stop watching; an exception raised but not yet delivered is withdrawn."""
        with self._lock:
            del self._due[thread_id]
            if thread_id in self._raised:
                self._raised.discard(thread_id)
                _withdraw(thread_id, None)

    def _run(self) -> None:
        while True:
            self._wake.clear()
            with self._lock:
                now = time.monotonic()
                for thread_id, due in self._due.items():
                    if due <= now:
                        _raise_in(thread_id, DeadlinePassed)
                        self._raised.add(thread_id)
                        self._due[thread_id] = now + RAISE_AGAIN_SECONDS
                self._looks_at = min(self._due.values(), default=float("inf"))
                timeout = None if self._looks_at == float("inf") else max(0.0, self._looks_at - now)
            self._wake.wait(timeout)


_MONITOR = _Monitor()


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Run the block in this thread with `DeadlinePassed` raised inside it once `at` (monotonic) passes.

    The exception may also surface as the block ends; the caller catches it around the `with`.
    """
    thread_id = threading.get_ident()
    _MONITOR.watch(thread_id, at)
    try:
        yield
    finally:
        _MONITOR.release(thread_id)


class Alarm:
    """Whether an `alarm` block's deadline passed while it ran (then its outcome is not to be trusted:
    C code may have swallowed the exception and carried on with a wrong answer)."""

    fired = False


#: The block `alarm` is watching, if any; SIGALRM raises only while one is.
_watching: Alarm | None = None


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _watching is not None:
        _watching.fired = True
        raise DeadlinePassed


def alarm_available() -> bool:
    """Whether `alarm` works here: on the main thread (where CPython runs signal handlers), with
    SIGALRM not taken by other code. Installs the handler the first time."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGALRM)
    if current is _on_alarm:
        return True
    if current is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGALRM, _on_alarm)
    return True


@contextmanager
def alarm(at: float) -> Iterator[Alarm]:
    """`deadline` for the main thread, by a SIGALRM timer instead of the monitor thread: a block that
    ends in time (nearly every one) costs two system calls and wakes no other thread. The timer
    repeats every RAISE_AGAIN_SECONDS, like the monitor. Only where `alarm_available()`."""
    global _watching
    if signal.getsignal(signal.SIGALRM) is not _on_alarm:  # SIGALRM's default action ends the process
        raise RuntimeError("watchdog.alarm needs alarm_available() first")
    watched = Alarm()
    try:  # the timer may fire before the block starts: it is still cancelled
        _watching = watched
        signal.setitimer(signal.ITIMER_REAL, max(at - time.monotonic(), 1e-6), RAISE_AGAIN_SECONDS)
        yield watched
    finally:
        while True:  # the handler may raise at any step until it is told the block is over
            try:
                _watching = None
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except DeadlinePassed:
                continue
