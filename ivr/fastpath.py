"""What the voice webhooks' fast paths share: a pool without pings, the flows, the TwiML.

Twilio waits on every request of a call, and the full path (``ivr.calls.CallDesk``)
goes through the ORM: a dozen statements and their unit of work per request. The fast
paths answer the common requests with a few Core statements each — the answer of an
incoming call (``ivr.quickanswer``), a keypad step (``ivr.quickstep``), the call's end
(``ivr.quickstatus``) — and hand anything unusual to the full path by returning None.
What they store is applied to the flow's rows later, in order (``ivr.steplog``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.db import Database, autocommit_engine, utcnow
from bot.engine import Flow
from bot.engine.events import Event
from bot.flowhost import ActionBridge, FlowHost
from bot.flowlibrary import FlowLibrary
from ivr import twiml
from ivr.links import CallLinks


def step_document(
    links: CallLinks,
    audio: Callable[[str, str], str | None] | None,
    call_id: int,
    step: int,
    flow: Flow,
    events: list[Event],
    state: dict[str, Any],
) -> str:
    """The TwiML of a call's step, in the session's language; its action URL answers ``step``."""
    voicing = twiml.Voicing(
        language=state.get("language") or flow.language, audio=audio, media_base=links.public_base_url
    )
    return twiml.render(events, twiml.Links(action=links.step(call_id, step)), voicing)


class FastPool:
    """The connections a process's fast paths share (kept in ``Runtime.services``; closed with it)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = autocommit_engine(db)

    def close(self) -> None:
        """Release the connections (``Runtime.close`` calls this)."""
        if self.engine is not self.db.engine:
            self.engine.dispose()


class FastPath:
    """One process's fast path of a voice request (made once, kept in ``Runtime.services``).

    ``pool``: connections shared with the other fast paths; without it this one has its own.
    """

    def __init__(
        self,
        db: Database,
        *,
        links: CallLinks,
        actions: ActionBridge | None = None,
        audio: Callable[[str, str], str | None] | None = None,
        now: Callable[[], dt.datetime] = utcnow,
        pool: FastPool | None = None,
    ) -> None:
        self.db = db
        self.pool = pool or FastPool(db)
        self.own_pool = pool is None
        self.engine = self.pool.engine
        self.links = links
        self.actions = actions
        self.audio = audio
        self.now = now

    def close(self) -> None:
        """Release the pool if it is this fast path's own (``Runtime.close`` calls this)."""
        if self.own_pool:
            self.pool.close()

    def host(self, flow_name: str, flow_version: int | None) -> tuple[FlowHost, int] | None:
        """A host for the stored flow and its version; None when it is missing or does not run on calls."""
        with Session(self.engine) as session:
            library = FlowLibrary(session)
            found = library.get(flow_name, flow_version)
            if found is None or "voice" not in found[0].channels:
                return None
            host = FlowHost(found[0], actions=self.actions, library=library.subflows(), clock=self.clock)
            return host, found[1]

    def document(self, call_id: int, step: int, flow: Flow, events: list[Event], state: dict[str, Any]) -> str:
        """The TwiML of a step's events; its action URL answers ``step``."""
        return step_document(self.links, self.audio, call_id, step, flow, events, state)

    def retrying(self, run: Callable[[Any], Any], *, begin: bool = False, atomic: bool = False) -> Any:
        """Run ``run(connection)``; once more on a fresh connection when the server had dropped the pooled one.

        ``begin``: one writing statement, committed (PostgreSQL's pool is in autocommit:
        no BEGIN, no COMMIT). ``atomic``: several statements in one transaction, which
        this connection then runs in PostgreSQL's default isolation, READ COMMITTED.
        """
        for attempt in (1, 2):
            try:
                if atomic:
                    with self.engine.connect() as conn:
                        if self.engine is not self.db.engine:
                            conn = conn.execution_options(isolation_level="READ COMMITTED")
                        with conn.begin():
                            return run(conn)
                if begin:
                    with self.engine.begin() as conn:
                        return run(conn)
                with self.engine.connect() as conn:
                    return run(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def clock(self) -> str:
        """The flows' clock, as the full path gives it."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
