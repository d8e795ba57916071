"""Benchmark: a voter's reply during a 100,000-voter blast, inbound -> reply at the provider.

Run:  .venv/bin/python -m bench.replies [--voters 100000] [--replies 300] [--rate 5]

A 100,000-voter campaign sends as fast as 2 ``python worker.py`` processes can, through
the twilio SDK to the fake Twilio (``bench.fake_twilio``, its own process, recording
when each request arrives). Once it is under way, voters who were already sent the
template answer it ("1") through ``bot.conversations.receive`` at ``--rate`` a second;
their flow's reply goes on the ``high`` queue. Measured per reply: from just before
``receive`` to the reply's arrival at the fake; p50 / p95 / p99 (target p99 <= 1 s).

Twice in one run: with the 2 workers only (replies wait for a worker to finish its
batch job), then with a third, reply-only worker (``python worker.py --queues high``).
The blast is aborted once the replies are measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from bench.dbsetup import add_pg_option
from bench.dispatch import HIGH_RATE
from bench.dispatch_world import WHATSAPP, FakeProcess, Workers, World, wait_for


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] if ordered else float("nan")


def run(args: argparse.Namespace, reply_worker: bool) -> dict[str, float]:
    """One blast with replies; return the latency figures (seconds)."""
    from bot.channels.base import Inbound
    from bot.conversations import receive
    from bot.models import Contact, Sender
    from campaigns import operations
    from campaigns.models import Recipient

    label = "reply_worker" if reply_worker else "two_workers"
    times_path = Path(tempfile.mkdtemp(prefix="canvass-replies-")) / "arrivals.json"
    fake = FakeProcess(latency_s=args.latency, times_path=times_path)
    world = World.create(
        args.pg, f"bench_replies_{label}", args.redis, api_base=fake.url, voters=args.voters, sender_rate=HIGH_RATE
    )
    bulk = replies = None
    asked: dict[str, float] = {}
    handled: list[float] = []  # seconds in receive (routing, storing, queueing the reply)
    try:
        campaign_id = world.campaign(HIGH_RATE)
        with world.rt.db.session() as db:
            sender_id = db.scalar(select(Sender.id).where(Sender.address == WHATSAPP))
        bulk = Workers(world.env, 2, log=args.log)
        if reply_worker:
            replies = Workers(world.env, 1, extra=("--queues", "high"), log=args.log)
        time.sleep(3)
        operations.launch(world.rt, campaign_id)

        def sent_phones() -> list[str]:
            with world.rt.db.session() as db:
                return list(
                    db.scalars(
                        select(Contact.phone)
                        .join(Recipient, Recipient.contact_id == Contact.id)
                        .where(Recipient.campaign_id == campaign_id, Recipient.status == "sent")
                        .limit(args.replies * 2)
                    )
                )

        wait_for(lambda: len(sent_phones()) >= args.replies * 2, timeout=300)
        phones = sent_phones()[: args.replies]
        started = time.perf_counter()
        for n, phone in enumerate(phones):
            delay = started + n / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            inbound = Inbound(
                provider_id=f"SM{uuid.uuid4().hex}", channel="whatsapp", from_phone=phone, to=WHATSAPP, text="1"
            )
            asked[phone] = time.time()
            receive(world.rt, inbound, sender_id)
            handled.append(time.time() - asked[phone])
        time.sleep(10)  # the last replies go out
        with world.rt.db.session() as db:
            progress = db.scalar(
                select(Recipient.id).where(Recipient.campaign_id == campaign_id, Recipient.status == "pending").limit(1)
            )
        if progress is not None:
            operations.stop(world.rt, campaign_id, operations.S.ABORTED)
    finally:
        for group in (bulk, replies):
            if group:
                group.stop()
        recorded = fake.stop()
        world.close()
    first_reply: dict[str, float] = {}
    for at, to, template in recorded["arrivals"]:
        if not template and to in asked and at >= asked[to] and to not in first_reply:
            first_reply[to] = at
    # Only the replies asked while templates still went out count: a blast that ended
    # before the last of them leaves the rest waiting for nothing.
    blast_end = max((at for at, _, template in recorded["arrivals"] if template), default=0.0)
    during = {p: t for p, t in asked.items() if t <= blast_end}
    waits = [first_reply[p] - t for p, t in during.items() if p in first_reply]
    missing = len(during) - len(waits)
    figures = {"p50": _p(waits, 0.5), "p95": _p(waits, 0.95), "p99": _p(waits, 0.99), "max": max(waits or [0.0])}
    print(
        f"{label}: {len(asked)} replies at {args.rate:g}/s, {len(during)} of them during the blast (still sending "
        f"at the end: {progress is not None}), "
        f"{missing} never reached the provider; receive() p50 {_p(handled, 0.5) * 1000:.0f} ms, "
        f"p99 {_p(handled, 0.99) * 1000:.0f} ms; inbound -> reply at the provider: p50 {figures['p50'] * 1000:.0f} ms, "
        f"p95 {figures['p95'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms, max {figures['max'] * 1000:.0f} ms; "
        f"target p99 <= 1 s: {'met' if figures['p99'] <= 1.0 and not missing else 'NOT met'}",
        flush=True,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pg_option(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--voters", type=int, default=100_000)
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="replies per second")
    parser.add_argument("--latency", type=float, default=0.0, help="the fake provider's latency (s)")
    parser.add_argument("--log", type=Path, help="append the workers' logs here")
    parser.add_argument("--only", choices=("two_workers", "reply_worker"))
    args = parser.parse_args()
    if args.only != "reply_worker":
        run(args, reply_worker=False)
    if args.only != "two_workers":
        run(args, reply_worker=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
