"""When a campaign will finish: what remains, at its pace, inside its send windows.

Pure arithmetic over the policy: starting now, each stretch of time the windows allow
sends ``rate × seconds`` messages, until what remains is sent. The windows are read in
the time zone most of the waiting voters are in (a campaign across zones finishes a
little earlier or later for the others). With a deadline, the caller is told whether
the campaign makes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

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
    """When ``remaining`` sends at ``rate_per_s`` are done, counting only the allowed stretches."""
    if remaining <= 0:
        return Eta(now, 0, rate_per_s, deadline)
    if rate_per_s <= 0:
        return Eta(None, remaining, rate_per_s, deadline, silenced)
    left = float(remaining)
    moment = now
    for _ in range(MAX_STRETCHES):
        try:
            opens = policy.next_allowed(moment, zone, {})
        except PolicyError:
            break
        closes = policy.open_until(opens, zone, {})
        if closes is None:
            return Eta(opens + dt.timedelta(seconds=left / rate_per_s), remaining, rate_per_s, deadline, silenced)
        room = (closes - opens).total_seconds() * rate_per_s
        if room >= left:
            return Eta(opens + dt.timedelta(seconds=left / rate_per_s), remaining, rate_per_s, deadline, silenced)
        left -= room
        moment = closes
    return Eta(None, remaining, rate_per_s, deadline, silenced)
