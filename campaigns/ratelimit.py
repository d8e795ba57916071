"""Pace: send slots handed out by Redis, exact across every worker process.

Each pace (a sender's rate, a campaign's pace) keeps one number in Redis, the
*theoretical arrival time* (TAT) of its next send (GCRA, as a virtual schedule): a
send may go at ``TAT - (burst - 1) × interval`` at the earliest, and moves the TAT on
by one interval. Reserving
``n`` sends under several paces at once returns the ``n`` moments they may go out and
moves every schedule on, in one atomic Lua call: each moment is the earliest that all
the paces allow, and each schedule advances from that moment. Workers then sleep until
their slot. Whatever the number of workers and machines, no stretch of time sees more
sends under a pace than ``rate × length + burst``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import redis

# KEYS: the paces. ARGV: now, count, then per key: interval (s), burst (sends).
_RESERVE = """
local now = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local tats, intervals, slack = {}, {}, {}
for k = 1, #KEYS do
  intervals[k] = tonumber(ARGV[1 + 2 * k])
  slack[k] = (tonumber(ARGV[2 + 2 * k]) - 1) * intervals[k]
  tats[k] = tonumber(redis.call('GET', KEYS[k]) or '0')
end
local out = {}
for i = 1, count do
  local t = now
  for k = 1, #KEYS do
    t = math.max(t, tats[k] - slack[k])
  end
  out[i] = string.format('%.6f', t)
  for k = 1, #KEYS do
    tats[k] = math.max(tats[k], t) + intervals[k]
  end
end
for k = 1, #KEYS do
  redis.call('SET', KEYS[k], string.format('%.6f', tats[k]), 'PX', math.ceil((tats[k] - now) * 1000) + 60000)
end
return out
"""


@dataclasses.dataclass(frozen=True)
class Pace:
    """``rate`` sends per second under ``key``, with up to ``burst`` at once."""

    key: str
    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be more than 0 per second, got {self.rate!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")


class Limiter:
    """Reserves send slots under several paces at once."""

    def __init__(self, conn: redis.Redis) -> None:
        self._script = conn.register_script(_RESERVE)

    def reserve(self, paces: Sequence[Pace], count: int, *, now: float | None = None) -> list[float]:
        """Reserve ``count`` sends; return their moments (``time.time()`` seconds), in order."""
        if count <= 0:
            return []
        if not paces:
            return [time.time() if now is None else now] * count
        args: list[str | int] = [repr(time.time() if now is None else now), count]
        for pace in paces:
            args += [repr(1.0 / pace.rate), pace.burst]
        return [float(t) for t in self._script(keys=[p.key for p in paces], args=args)]


# Thread wake-ups are reliable to a few milliseconds, not below.
LATE_FLOOR_S = 0.002
# A send on time when it woke may still be held up before its call (the Redis step that
# makes the row ours): it goes if no later than this share of an interval after its slot.
HELD_SHARE = 0.8


def tolerance(paces: Sequence[Pace], share: float = 0.5) -> float:
    """How late after its slot a send may still go: ``share`` (half) of the shortest interval of ``paces``.

    A send that goes out ``d`` seconds after its slot moves towards the next ones; while
    ``d`` stays under one interval, no second holds more than ``rate + burst`` sends. A
    worker woken later than this (a busy machine, a paused process) takes a new slot
    instead of crowding the schedule. Paces faster than 250/s (half an interval under
    2 ms, below what a thread's wake-up can promise) are left out: they are kept over
    each reservation instead. With none left, there is no lateness check (``inf``).
    """
    intervals = [1.0 / p.rate for p in paces if 0.5 / p.rate >= LATE_FLOOR_S]
    return share * min(intervals) if intervals else math.inf


def sender_pace(sender_id: int, rate: float) -> Pace:
    """A sender's rate limit (every campaign and reply through it shares it)."""
    return Pace(f"canvass:rate:sender:{sender_id}", rate)


def voice_account_pace(account: str, rate: float) -> Pace:
    """The calls per second of a whole voice account (every call campaign through it shares it)."""
    return Pace(f"canvass:rate:voice-account:{account}", rate)


def campaign_pace(campaign_id: int, rate: float) -> Pace:
    """A campaign's own pace."""
    return Pace(f"canvass:rate:campaign:{campaign_id}", rate)


def wait_until(
    moment: float, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time
) -> None:
    """Sleep until ``moment`` (no-op when it has passed)."""
    delay = moment - clock()
    if delay > 0:
        sleep(delay)
