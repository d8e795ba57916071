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

HORIZON = dt.timedelta(days=730)  # beyond two years: "not in sight"


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
    # Waiting voters in time zones where the windows never overlap: (zone, how many).
    closed: tuple[tuple[str, int], ...] = ()

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
        if self.closed:
            zones = ", ".join(f"{zone} ({n})" for zone, n in self.closed)
            found.append(
                f"waiting voters in time zones where the send windows never overlap will be skipped "
                f"(outside_blackout): {zones}"
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
    their zone), and the closed ones wait. Voters of a zone where the windows never overlap
    are left out (they will be skipped) and named in the warning. Not done within
    ``HORIZON``: no end in sight.
    """
    left = {zone: float(n) for zone, n in remaining.items() if n > 0}
    total = int(sum(remaining.values()))
    closed = tuple((zone, int(left.pop(zone))) for zone in sorted(left) if not policy.ever_allows(now, zone))
    if not left:
        return Eta(None if closed else now, total, rate_per_s, deadline, silenced, closed)
    if rate_per_s <= 0 or sum(left.values()) > rate_per_s * HORIZON.total_seconds():
        return Eta(None, total, rate_per_s, deadline, silenced, closed)  # not even sending without a pause
    zones = _Zones(policy)
    moment, horizon = now, now + HORIZON
    while moment < horizon:
        open_now, change = zones.at(moment, left)
        for zone in sorted(zones.never & left.keys()):  # stopped overlapping (a clock change)
            closed += ((zone, int(left.pop(zone))),)
        if not left:
            return Eta(moment, total, rate_per_s, deadline, silenced, closed)
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
                return Eta(moment, total, rate_per_s, deadline, silenced, closed)
            continue
        sent = rate_per_s * span
        for zone in open_now:
            left[zone] -= sent * left[zone] / waiting
        assert change is not None
        moment = change
    return Eta(None, total, rate_per_s, deadline, silenced, closed)


class _Zones:
    """Each zone's state (open or not) and its next change, asked of the policy only once it has come."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.known: dict[str, tuple[bool, dt.datetime | None]] = {}
        self.never: set[str] = set()  # zones whose windows stopped overlapping

    def at(self, moment: dt.datetime, zones: Mapping[str, float]) -> tuple[list[str], dt.datetime | None]:
        """The zones open at ``moment``, and the next moment one of them opens or closes (None: never)."""
        open_now: list[str] = []
        changes: list[dt.datetime] = []
        for zone in zones:
            state = self.known.get(zone)
            if state is None or (state[1] is not None and state[1] <= moment):
                state = self.known[zone] = self._state(moment, zone)
            if state[0]:
                open_now.append(zone)
            if state[1] is not None:
                changes.append(state[1])
        return open_now, min(changes, default=None)

    def _state(self, moment: dt.datetime, zone: str) -> tuple[bool, dt.datetime | None]:
        try:
            opens = self.policy.next_allowed(moment, zone, {})
        except PolicyError:  # open now and then, until a clock change: never again
            self.never.add(zone)
            return False, None
        if opens > moment:
            return False, opens
        return True, self.policy.open_until(moment, zone, {})
