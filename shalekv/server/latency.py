"""Latency figures: a small log-bucketed histogram per command (INFO latencystats,
/metrics histograms) and Redis's latency monitor (LATENCY LATEST/HISTORY/RESET).

Redis keeps an HdrHistogram per command (1 us .. 1 s, 2 significant digits); we keep
4 buckets per power of two, enough for p50/p99/p99.9 within 25%, in one list of ints
per command, updated in an after_call hook with two integer operations.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from shalekv.commands.registry import Command
from shalekv.commands.reply import Map

if TYPE_CHECKING:
    from shalekv.server.app import Server
    from shalekv.server.client import Client

SUB = 4  # buckets per power of two
NBUCKETS = 64 * SUB
# Redis's LATENCY_TS_LEN: samples kept per event (one per second at most).
HISTORY_LEN = 160


def bucket_of(usec: int) -> int:
    """The bucket of a latency in microseconds: values 0..3 exactly, then 4 per octave."""
    if usec < SUB:
        return max(usec, 0)
    b = usec.bit_length()  # >= 3; the two bits after the leading one pick the quarter
    return (b - 2) * SUB + ((usec >> (b - 3)) & 3)


# bucket_of for latencies under 4 ms (nearly every command): one list index
_SHORT = 4096
_BUCKET_OF_SHORT = [bucket_of(u) for u in range(_SHORT)]


def bucket_upper(i: int) -> int:
    """The largest latency (us) that falls in bucket i."""
    if i < SUB:
        return i
    b, sub = divmod(i, SUB)
    return (((4 | sub) + 1) << (b - 1)) - 1


class Histogram:
    """Counts of command latencies by bucket (the call count and total time are the
    server's Stats; the hot path updates one list item)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * NBUCKETS

    @property
    def total(self) -> int:
        return sum(self.counts)

    def add(self, usec: int) -> None:
        self.counts[min(bucket_of(usec), NBUCKETS - 1)] += 1

    def percentile(self, p: float) -> int:
        """The latency (us, a bucket's upper bound) at or below which p% of calls ran."""
        total = self.total
        if not total:
            return 0
        want = max(1, -(-total * p // 100))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= want:
                return bucket_upper(i)
        return bucket_upper(NBUCKETS - 1)

    def cumulative(self, bounds_usec: list[int]) -> list[int]:
        """Calls at most each bound (bounds ascending): Prometheus's `le` buckets. A bucket
        counts under a bound only when its whole range is below it (a lower bound)."""
        out = []
        i = 0
        seen = 0
        for bound in bounds_usec:
            while i < NBUCKETS and bucket_upper(i) <= bound:
                seen += self.counts[i]
                i += 1
            out.append(seen)
        return out


class Latency:
    """Per-command histograms plus Redis's latency monitor events."""

    def __init__(self, server: Server, parked: set[int]) -> None:
        self.server = server
        self.parked = parked  # clients whose current call is parked by CLIENT PAUSE
        self.histograms: dict[str, Histogram] = {}
        # event -> deque of (unix time, ms), and the all-time max, as latency.c
        self.events: dict[str, deque[tuple[int, int]]] = {}
        self.max: dict[str, int] = {}
        self.threshold_ns = self._threshold(server.config["latency-monitor-threshold"])

    @staticmethod
    def _threshold(ms: int) -> float:
        return ms * 1_000_000 if ms > 0 else float("inf")

    def on_config(self, name: str, value: object) -> None:
        if name == "latency-monitor-threshold":
            self.threshold_ns = self._threshold(int(value))  # type: ignore[call-overload]

    def after_call(self, c: Client, cmd: Command, args: list[bytes], ns: int, failed: bool) -> None:
        # On every command: bucket_of from a table, the threshold from a cached field.
        if self.parked and c.id in self.parked:
            return
        usec = ns // 1000
        h = self.histograms.get(cmd.name)
        if h is None:
            h = self.histograms[cmd.name] = Histogram()
        if 0 <= usec < _SHORT:
            h.counts[_BUCKET_OF_SHORT[usec]] += 1
        else:
            h.counts[min(bucket_of(usec), NBUCKETS - 1)] += 1
        # As Redis's call(): event "command" for commands slower than the threshold
        # (or "fast-command" for fast ones), in milliseconds.
        if ns >= self.threshold_ns:
            self.add_sample("fast-command" if "fast" in cmd.flags else "command", usec // 1000)

    def add_sample(self, event: str, ms: int) -> None:
        """latencyAddSample: one sample per second, keeping the second's maximum."""
        now = int(time.time())
        ts = self.events.get(event)
        if ts is None:
            ts = self.events[event] = deque(maxlen=HISTORY_LEN)
        self.max[event] = max(self.max.get(event, 0), ms)
        if ts and ts[-1][0] == now:
            if ts[-1][1] < ms:
                ts[-1] = (now, ms)
            return
        ts.append((now, ms))

    def latest(self) -> list[list[object]]:
        return [
            [event.encode(), ts[-1][0], ts[-1][1], self.max[event]]
            for event, ts in self.events.items()
            if ts
        ]

    def history(self, event: str) -> list[list[int]]:
        return [[t, ms] for t, ms in self.events.get(event, ())]

    def reset(self, events: list[str] | None) -> int:
        if events is None:
            n = len(self.events)
            self.events.clear()
            self.max.clear()
            return n
        n = 0
        for e in events:
            if self.events.pop(e, None) is not None:
                n += 1
            self.max.pop(e, None)
        return n

    def cdf(self, name: str) -> Map | None:
        """LATENCY HISTOGRAM's entry: calls, and cumulative counts at powers of two
        microseconds where the count grows (as Redis's hdr_iter_log from 1 us)."""
        h = self.histograms.get(name)
        total = 0 if h is None else h.total
        if h is None or not total:
            return None
        flat: list[object] = []
        prev = 0
        bound = 1
        while prev < total:
            n = h.cumulative([bound])[0] if bound < 1 << 62 else total
            if n > prev:
                flat += [bound, n]
                prev = n
            bound <<= 1
        return Map([b"calls", total, b"histogram_usec", Map(flat)])

    def reset_histograms(self) -> None:
        """CONFIG RESETSTAT clears the per-command histograms, as Redis's."""
        self.histograms.clear()


def install(server: Server, parked: set[int]) -> Latency:
    lat = Latency(server, parked)
    server.extensions["latency"] = lat
    server.add_hook(lat.after_call)
    server.config.listeners.append(lat.on_config)
    return lat
