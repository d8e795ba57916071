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

    @property
    def late(self) -> bool:
        """True when the campaign cannot finish before its deadline."""
        if self.deadline is None or self.remaining == 0:
            return False
        return self.finishes_at is None or self.finishes_at > self.deadline

    def warning(self) -> str | None:
        """A sentence for the operator when the deadline will be missed."""
        if not self.late or self.deadline is None:
            return None
        at = self.finishes_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.finishes_at else "never"
        return (
            f"cannot finish before the deadline {self.deadline.strftime('%Y-%m-%dT%H:%M:%SZ')}: "
            f"{self.remaining} left at {self.rate_per_s:g}/s finish at {at}; raise the pace or narrow the audience"
        )


def estimate(
    now: dt.datetime,
    remaining: int,
    rate_per_s: float,
    policy: Policy,
    zone: str,
    deadline: dt.datetime | None = None,
) -> Eta:
    """When ``remaining`` sends at ``rate_per_s`` are done, counting only the allowed stretches."""
    if remaining <= 0:
        return Eta(now, 0, rate_per_s, deadline)
    if rate_per_s <= 0:
        return Eta(None, remaining, rate_per_s, deadline)
    left = float(remaining)
    moment = now
    for _ in range(MAX_STRETCHES):
        try:
            opens = policy.next_allowed(moment, zone, {})
        except PolicyError:
            break
        closes = policy.open_until(opens, zone, {})
        if closes is None:
            return Eta(opens + dt.timedelta(seconds=left / rate_per_s), remaining, rate_per_s, deadline)
        room = (closes - opens).total_seconds() * rate_per_s
        if room >= left:
            return Eta(opens + dt.timedelta(seconds=left / rate_per_s), remaining, rate_per_s, deadline)
        left -= room
        moment = closes
    return Eta(None, remaining, rate_per_s, deadline)
