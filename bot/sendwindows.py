"""Send windows and blackout periods: when the law lets a voter be messaged or called.

A **send window** allows sending between two local times of day, in the voter's own
time zone (from their contact, else their number) or in a fixed zone when the rule is
national (India's rules are in IST). Several windows all apply: a voter is reachable only
when every one allows it. Presets carry the rules operators ask for:

=====================  ===============  ============================================
preset                 allowed          rule
=====================  ===============  ============================================
``us_tcpa``            08:00–21:00      US TCPA, the voter's local time
``india_promotional``  09:00–21:00 IST  TRAI, promotional messages
``india_election``     06:00–22:00 IST  no campaigning 22:00–06:00 (ECI)
=====================  ===============  ============================================

A **blackout** forbids sending between two moments, to everyone or to the voters with a
valued tag (``constituency=pune-central``): the 48 hours of silence before a
constituency's poll, for example.

Everything here is pure: times in, times out. :meth:`Policy.next_allowed` answers "when
may this voter next be sent?", checked at send time by the batch sender.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_STEPS = 64


class PolicyError(ValueError):
    """A window or blackout is written wrongly; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@functools.lru_cache(maxsize=1024)
def _zone_info(name: str) -> ZoneInfo:
    # ZoneInfo's own cache keeps 8 zones strongly: a campaign across more read its files again.
    return ZoneInfo(name)


def _zone(name: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(field, f"unknown time zone {name!r} (e.g. Asia/Kolkata)") from None


def _time(value: Any, field: str) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 21:00 as the base-60 number 1260: minutes after midnight.
        return dt.time(value // 60, value % 60)
    match = HHMM.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise PolicyError(field, f"a time of day such as 09:00, got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


@dataclasses.dataclass(frozen=True)
class SendWindow:
    """Sending allowed from ``start`` to ``end`` local time (``end`` after midnight wraps)."""

    start: dt.time
    end: dt.time
    zone: str | None = None  # None: the voter's own time zone
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise PolicyError("send_window", "start and end are the same time: the window would be empty")
        if self.zone is not None:
            _zone(self.zone, "send_window.timezone")

    def _local(self, when: dt.datetime, voter_zone: str) -> dt.datetime:
        return when.astimezone(_zone_info(self.zone or voter_zone))

    def allows(self, when: dt.datetime, voter_zone: str) -> bool:
        """True when ``when`` (aware) falls inside the window."""
        t = self._local(when, voter_zone).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_open(self, when: dt.datetime, voter_zone: str) -> dt.datetime:
        """The next moment at or after ``when`` that the window opens (UTC)."""
        local = self._local(when, voter_zone)
        zone = local.tzinfo
        for days in range(0, 3):
            day = local.date() + dt.timedelta(days=days)
            opening = _wall(day, self.start, zone)  # type: ignore[arg-type]
            if opening >= when:
                return opening.astimezone(dt.UTC)
        raise AssertionError("a daily window opens within two days")

    def closes(self, when: dt.datetime, voter_zone: str) -> dt.datetime:
        """When the window that is open at ``when`` closes (UTC).

        An end in the hour the clocks repeat in autumn comes twice: inside the repeat (the
        second 01:10), the window closes at the end's second coming, not a day later.
        """
        local = self._local(when, voter_zone)
        zone = local.tzinfo
        for days in range(0, 3):
            closing = _wall(local.date() + dt.timedelta(days=days), self.end, zone)  # type: ignore[arg-type]
            for moment in (closing, closing.replace(fold=1)):
                if moment > when:
                    return moment.astimezone(dt.UTC)
        raise AssertionError("a daily window closes within two days")


def _wall(day: dt.date, at: dt.time, zone: dt.tzinfo) -> dt.datetime:
    """A local wall-clock moment; in a DST gap (a time the clocks skip) it moves on by the gap."""
    naive = dt.datetime.combine(day, at)
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(dt.UTC).astimezone(zone)
    if back.replace(tzinfo=None) != naive:
        # Spring forward skipped this time: the clock jumps straight past it.
        return aware.astimezone(dt.UTC).astimezone(zone)
    return aware


PRESETS = {
    "us_tcpa": SendWindow(dt.time(8), dt.time(21), None, "us_tcpa"),
    "india_promotional": SendWindow(dt.time(9), dt.time(21), "Asia/Kolkata", "india_promotional"),
    "india_election": SendWindow(dt.time(6), dt.time(22), "Asia/Kolkata", "india_election"),
}


def tag_key(name: str) -> str:
    """A tag name as contacts' tags are stored (``bot.contacts.normalize_tag_name``, unchecked)."""
    return name.strip().lower().replace(" ", "_")


@dataclasses.dataclass(frozen=True)
class Blackout:
    """No sending from ``starts`` to ``ends``, to everyone or to voters with ``tag`` = ``value``."""

    starts: dt.datetime
    ends: dt.datetime
    tag: str | None = None
    value: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise PolicyError("blackouts", "times need their UTC offset (e.g. 2026-11-18T18:00:00+05:30)")
        if self.ends <= self.starts:
            raise PolicyError("blackouts", "a blackout must end after it starts")
        if (self.tag is None) != (self.value is None):
            raise PolicyError("blackouts", "give both tag and value (e.g. tag: constituency, value: pune-central)")
        if self.tag is not None and self.value is not None:
            # As contacts' tag names are stored (``Constituency`` is ``constituency``); the
            # value is matched whatever its case: a silence must not miss a voter over a capital.
            object.__setattr__(self, "tag", tag_key(self.tag))
            object.__setattr__(self, "value", self.value.strip())

    def applies(self, tags: Mapping[str, str | None]) -> bool:
        """True when the blackout concerns a voter with these valued tags (the value in any case)."""
        if self.tag is None or self.value is None:
            return True
        value = tags.get(self.tag)
        return value is not None and value.strip().lower() == self.value.lower()

    def covers(self, when: dt.datetime) -> bool:
        """True when ``when`` is inside the blackout."""
        return self.starts <= when < self.ends


@dataclasses.dataclass(frozen=True)
class Policy:
    """Every window and blackout that applies to a campaign (the deployment's and its own)."""

    windows: tuple[SendWindow, ...] = ()
    blackouts: tuple[Blackout, ...] = ()

    def next_allowed(self, when: dt.datetime, voter_zone: str, tags: Mapping[str, str | None]) -> dt.datetime:
        """The first moment at or after ``when`` when this voter may be sent (``when`` itself if now)."""
        blackouts = [b for b in self.blackouts if b.applies(tags)]
        moment = when
        for _ in range(MAX_STEPS + 2 * len(blackouts)):  # each blackout can push once or twice
            moved = False
            for window in self.windows:
                if not window.allows(moment, voter_zone):
                    moment, moved = window.next_open(moment, voter_zone), True
            for blackout in blackouts:
                if blackout.covers(moment):
                    moment, moved = blackout.ends, True
            if not moved:
                return moment
        raise PolicyError("send_window", "the windows never overlap: no moment allows sending")

    def ever_allows(self, when: dt.datetime, voter_zone: str) -> bool:
        """False when the windows never overlap in ``voter_zone``: no moment from ``when`` on allows sending.

        Read from the windows alone: blackouts all end.
        """
        try:
            Policy(self.windows).next_allowed(when, voter_zone, {})
        except PolicyError:
            return False
        return True

    def allows(self, when: dt.datetime, voter_zone: str, tags: Mapping[str, str | None]) -> bool:
        """True when the voter may be sent at ``when``."""
        return self.next_allowed(when, voter_zone, tags) == when

    def open_until(self, when: dt.datetime, voter_zone: str, tags: Mapping[str, str | None]) -> dt.datetime | None:
        """When the voter's current allowed stretch ends (None: no window or blackout ends it)."""
        ends = [w.closes(when, voter_zone) for w in self.windows]
        ends += [b.starts for b in self.blackouts if b.applies(tags) and b.starts > when]
        return min(ends) if ends else None

    def blacked_out_at(self, moment: dt.datetime, tags: Mapping[str, str | None]) -> bool:
        """True when a blackout for this voter covers ``moment`` (its end included)."""
        return any(b.applies(tags) and b.starts <= moment <= b.ends for b in self.blackouts)

    def next_allowed_in(
        self,
        when: dt.datetime,
        zones: tuple[str, ...],
        tags: Mapping[str, str | None],
        lead: dt.timedelta = dt.timedelta(0),
    ) -> dt.datetime:
        """``next_allowed`` in every one of ``zones`` (a number whose area spans zones) at once.

        With ``lead``: a moment whose allowed stretch ends sooner than that after it does not
        count (a send claimed then may go out a little later: never after the window).
        When the zones' windows never meet, the first zone (the contact's stored one) alone.
        """
        moment = when
        for _ in range(MAX_STEPS):
            later = max(self.next_allowed(moment, zone, tags) for zone in zones)
            if later == moment:
                until = self.open_until_in(moment, zones, tags) if lead else None
                if until is None or until - moment >= lead:
                    return moment
                later = until
            moment = later
        return self.next_allowed(when, zones[0], tags)

    def open_until_in(
        self, when: dt.datetime, zones: tuple[str, ...], tags: Mapping[str, str | None]
    ) -> dt.datetime | None:
        """``open_until`` in every one of ``zones``: the first of their ends."""
        ends = [end for zone in zones if (end := self.open_until(when, zone, tags)) is not None]
        return min(ends) if ends else None

    def outlasting(self, start: dt.datetime, deadline: dt.datetime) -> list[Blackout]:
        """Blackouts covering the whole of ``start``..``deadline``: their voters cannot be reached in time."""
        return [b for b in self.blackouts if b.starts <= start and b.ends >= deadline]


def parse_windows(raw: Any, field: str = "send_window") -> tuple[SendWindow, ...]:
    """Windows from plain data: a preset name, ``{start, end, timezone}``, or a list of those."""
    if raw is None or raw == []:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        here = f"{field}[{i}]" if isinstance(raw, list) else field
        if isinstance(item, str):
            if item not in PRESETS:
                raise PolicyError(here, f"unknown preset {item!r} (one of {', '.join(PRESETS)}), or {{start, end}}")
            out.append(PRESETS[item])
        elif isinstance(item, Mapping):
            unknown = set(item) - {"start", "end", "timezone"}
            if unknown:
                raise PolicyError(here, f"unknown key {sorted(unknown)[0]!r} (start, end, timezone)")
            zone = item.get("timezone")
            if zone is not None:
                _zone(str(zone), f"{here}.timezone")
            start, end = _time(item.get("start"), f"{here}.start"), _time(item.get("end"), f"{here}.end")
            out.append(SendWindow(start, end, None if zone is None else str(zone)))
        else:
            raise PolicyError(here, "a preset name or {start: '09:00', end: '21:00', timezone: ...}")
    return tuple(out)


def parse_when(value: Any) -> dt.datetime:
    """An ISO-8601 time with its offset (``2026-12-01T09:00:00+05:30``), as UTC."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r} (e.g. 2026-12-01T09:00:00+05:30)") from None
    else:
        raise ValueError(f"not an ISO-8601 time: {value!r}")
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset: add one, e.g. +05:30 or Z")
    return when.astimezone(dt.UTC)


def parse_blackouts(raw: Any, field: str = "blackouts") -> tuple[Blackout, ...]:
    """Blackouts from plain data: ``[{from, to, tag, value, reason}]``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(field, "a list of {from, to, tag, value, reason}")
    out = []
    for i, item in enumerate(raw):
        here = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(here, "a mapping with from, to (and tag, value, reason)")
        unknown = set(item) - {"from", "to", "tag", "value", "reason"}
        if unknown:
            raise PolicyError(here, f"unknown key {sorted(unknown)[0]!r}")
        try:
            starts, ends = parse_when(item.get("from")), parse_when(item.get("to"))
        except ValueError as exc:
            raise PolicyError(here, str(exc)) from None
        tag, value = item.get("tag"), item.get("value")
        out.append(
            Blackout(
                starts,
                ends,
                None if tag is None else str(tag),
                None if value is None else str(value),
                str(item.get("reason") or ""),
            )
        )
    return tuple(out)


def parse_setting(text: str) -> tuple[SendWindow, ...]:
    """``CANVASS_SEND_WINDOW``: presets or ``HH:MM-HH:MM[@Zone]``, separated by commas."""
    items: list[Any] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part in PRESETS:
            items.append(part)
            continue
        span, _, zone = part.partition("@")
        start, sep, end = span.partition("-")
        if not sep:
            raise PolicyError("send_window", f"{part!r}: a preset ({', '.join(PRESETS)}) or 09:00-21:00[@Asia/Kolkata]")
        items.append({"start": start.strip(), "end": end.strip(), **({"timezone": zone.strip()} if zone else {})})
    return parse_windows(items)


def load_blackouts_file(path: str) -> tuple[Blackout, ...]:
    """``CANVASS_BLACKOUTS``: a YAML file with a list of blackouts (safe loading)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise PolicyError("blackouts", f"not valid YAML: {exc}") from None
    return parse_blackouts(data or [])


def dump_windows(windows: Iterable[SendWindow]) -> list[Any]:
    """Windows as stored on a campaign (preset names stay names)."""
    out: list[Any] = []
    for w in windows:
        if w.name in PRESETS and PRESETS[w.name] == w:
            out.append(w.name)
        else:
            item = {"start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M")}
            if w.zone:
                item["timezone"] = w.zone
            out.append(item)
    return out


def dump_blackouts(blackouts: Iterable[Blackout]) -> list[dict[str, Any]]:
    """Blackouts as stored on a campaign."""
    return [
        {"from": b.starts.isoformat(), "to": b.ends.isoformat(), "tag": b.tag, "value": b.value, "reason": b.reason}
        for b in blackouts
    ]
