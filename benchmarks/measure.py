"""What the benchmark scripts measure with, once: /proc readers and percentiles (Linux)."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int | str, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), in KiB; 0 when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith(field + ":")), 0)


def cpu_seconds(pids: Iterable[int], *, children: bool = False) -> float:
    """User + system CPU the processes used so far (with their waited-for children when asked)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(v) for v in fields[11 : 15 if children else 13])
    return ticks / CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (a postmaster's backends, say)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return children


def io_calls(pid: int | str = "self") -> tuple[int, int]:
    """(read, write) system calls of the read(2)/write(2) family the process made so far, from
    /proc/PID/io (pipes and files; socket recv/send are not counted); (0, 0) when unreadable."""
    try:
        fields = dict(line.split(": ", 1) for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        return int(fields["syscr"]), int(fields["syscw"])
    except (OSError, KeyError, ValueError):
        return 0, 0


def cpu_ticks() -> tuple[int, int]:
    """(all, steal) CPU ticks of the machine so far; steal is time the hypervisor gave to other guests,
    the clearest sign that a run's figures are the neighbours' as much as ours."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return sum(values), values[7] if len(values) > 7 else 0


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    elapsed = after[0] - before[0]
    return (after[1] - before[1]) / elapsed if elapsed > 0 else 0.0


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


def p50_p95(samples_ms: list[float]) -> str:
    """ "p50 … ms   p95 … ms" of samples in milliseconds."""
    return f"p50 {statistics.median(samples_ms):7.3f} ms   p95 {percentile(samples_ms, 0.95):7.3f} ms"


async def timed(call: Callable[[], Awaitable[object]], n: int, warm_up: int = 5) -> list[float]:
    """Seconds each of `n` calls took, after `warm_up` calls that are not counted."""
    for _ in range(warm_up):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples
