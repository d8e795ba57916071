"""When a campaign will finish: what remains, at its pace, inside its send windows.

Pure arithmetic over the policy: starting now, each stretch of time the windows allow
sends ``rate × seconds`` messages, until what remains is sent. The windows are read in
each waiting voter's time zone: while some zones are open and others closed, the open
ones have the whole pace. With a deadline, the caller is told whether the campaign
makes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

from bot.sendwindows import Policy, PolicyError

MAX_STRETCHES = 800  # two years of daily windows: beyond that, "not in sight"


@dataclasses.dataclass(frozen=True)
class Eta:
    """The expected end of sending, and whether it beats the deadline."""

    finishes_at: dt.datetime | None  # None: nothing allows sending in sight
    remaining: int
    rate_per_s: float
    deadline: dt.datetime | None = None
    # Waiting voters a tagged blackout silences from its start past the deadline:
    # ("constituency=kothrud", how many, when it starts).
    silenced: tuple[tuple[str, int, dt.datetime], ...] = ()

    @property
    def late(self) -> bool:
        """True when the campaign cannot finish before its deadline."""
        if self.deadline is None or self.remaining == 0:
            return False
        return self.finishes_at is None or self.finishes_at > self.deadline

    def warning(self) -> str | None:
        """Sentences for the operator when the deadline will be missed, for all or for a blackout's voters."""
        found = []
        if self.late and self.deadline is not None:
            at = _iso(self.finishes_at) if self.finishes_at else "never"
            found.append(
                f"cannot finish before the deadline {_iso(self.deadline)}: {self.remaining} left at "
                f"{self.rate_per_s:g}/s finish at {at}; raise the pace or narrow the audience"
            )
        for label, count, starts in self.silenced:
            if self.finishes_at is None or self.finishes_at > starts:
                found.append(
                    f"{count} waiting voter(s) with {label} are silenced from {_iso(starts)} until past the "
                    f"deadline: those not sent by then will be skipped (outside_blackout)"
                )
        return "; ".join(found) or None


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def estimate(
    now: dt.datetime,
    remaining: int,
    rate_per_s: float,
    policy: Policy,
    zone: str,
    deadline: dt.datetime | None = None,
    silenced: tuple[tuple[str, int, dt.datetime], ...] = (),
) -> Eta:
    """When ``remaining`` sends at ``rate_per_s`` are done, counting only the stretches ``zone``'s windows allow."""
    return estimate_by_zone(now, {zone: remaining}, rate_per_s, policy, deadline, silenced)


def estimate_by_zone(
    now: dt.datetime,
    remaining: Mapping[str, int],
    rate_per_s: float,
    policy: Policy,
    deadline: dt.datetime | None = None,
    silenced: tuple[tuple[str, int, dt.datetime], ...] = (),
) -> Eta:
    """When the voters left in each time zone (``remaining``) are sent, at ``rate_per_s`` in all.

    Between two moments when some zone's window opens or closes, the zones open share the
    pace (in proportion to what each has left: a batch claims its rows in order, whatever
    their zone), and the closed ones wait. A zone where the windows never overlap is never
    done: no end in sight.
    """
    left = {zone: float(n) for zone, n in remaining.items() if n > 0}
    total = int(sum(remaining.values()))
    if not left:
        return Eta(now, 0, rate_per_s, deadline)
    if rate_per_s <= 0:
        return Eta(None, total, rate_per_s, deadline, silenced)
    moment = now
    for _ in range(2 * MAX_STRETCHES * len(left)):  # a closed stretch, then an open one
        open_now, change = _stretch(policy, moment, left)
        if open_now is None:
            break
        if not open_now:
            if change is None:
                break
            moment = change
            continue
        waiting = sum(left[z] for z in open_now)
        span = math.inf if change is None else (change - moment).total_seconds()
        if waiting <= rate_per_s * span:
            moment += dt.timedelta(seconds=waiting / rate_per_s)
            for zone in open_now:
                del left[zone]
            if not left:
                return Eta(moment, total, rate_per_s, deadline, silenced)
            continue
        sent = rate_per_s * span
        for zone in open_now:
            left[zone] -= sent * left[zone] / waiting
        assert change is not None
        moment = change
    return Eta(None, total, rate_per_s, deadline, silenced)


def _stretch(
    policy: Policy, moment: dt.datetime, left: Mapping[str, float]
) -> tuple[list[str] | None, dt.datetime | None]:
    """The zones open at ``moment``, and the next moment one of the zones opens or closes.

    (None, None) when a zone's windows never overlap; a None moment: nothing changes again.
    """
    open_now: list[str] = []
    changes: list[dt.datetime] = []
    for zone in left:
        try:
            opens = policy.next_allowed(moment, zone, {})
        except PolicyError:
            return None, None
        if opens > moment:
            changes.append(opens)
            continue
        open_now.append(zone)
        closes = policy.open_until(moment, zone, {})
        if closes is not None:
            changes.append(closes)
    return open_now, min(changes, default=None)
