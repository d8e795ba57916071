"""Benchmark: what pricing each voter's own SMS text costs a claim, per row.

Run:  .venv/bin/python -m bench.sms_claims [--voters 20000] [--chunk 48]

A fresh PostgreSQL schema with ``--voters`` voters in two halves: ward 3 with plain names
(their texts take the template sample's one segment: nothing to correct), ward 4 with
names in Devanagari (every text becomes two UCS-2 segments: every row is priced again and
its extra reserved against the budget, ``campaigns.sms_costs``). Two SMS campaigns with a
budget, one per ward, launched. This process claims and settles their rows a chunk at a
time, taking turns (so both see the same machine), exactly as a batch job does, with no
provider. Printed: claim CPU per row of each, and the ratio; the spend of each against
its rows' count, which must be exactly one and two segments a voter.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from sqlalchemy import text

from bench.dbsetup import add_pg_option, drop_schema
from bench.dispatch_world import ROOT, World

SPEC = """
name: SMS {ward}
channel: sms
sender: "+919999900002"
template: turnout_sms
variables: {{1: {{contact: name}}}}
audience: {{tag: ward, eq: "{ward}"}}
flow: {{name: turnout_reminder, at: rsvp}}
pace: 1000/s
budget: 100000
"""
PRICE = "0.0020"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pg_option(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--voters", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=48)
    args = parser.parse_args()
    schema = "bench_sms_claims"
    world = World.create(args.pg, schema, args.redis, api_base="http://127.0.0.1:9", voters=args.voters, sender_rate=1)
    try:
        ids = _setup(world)
        runs = {ward: _Run(world, cid, args.chunk) for ward, cid in ids.items()}
        rounds = 0
        while any(not r.done for r in runs.values()):
            rounds += 1
            for run in runs.values():
                run.advance(warm=rounds <= 5)
        plain, own = runs["3"], runs["4"]
        print(
            f"claim CPU a row: plain names {plain.per_row_ms():.3f} ms ({plain.rows:,} rows), "
            f"Devanagari names {own.per_row_ms():.3f} ms ({own.rows:,} rows, every one priced again): "
            f"ratio {own.per_row_ms() / plain.per_row_ms():.2f}",
            flush=True,
        )
        for ward, cid in ids.items():
            spent, rows = _spend(world, cid)
            each = spent / rows / float(PRICE)
            print(f"  ward {ward}: spent {spent} for {rows:,} sent ({each:.3f} segments a voter)")
    finally:
        world.close()
        drop_schema(args.pg, schema)
    return 0


def _setup(world: World) -> dict[str, int]:
    """SMS sender, template and price; half the voters in ward 4 with Devanagari names; both campaigns."""
    from bot.models import Sender
    from campaigns import operations, pricing, spec, templates

    rt = world.rt
    with rt.db.session() as db:
        db.add(Sender(provider="twilio", channel="sms", address="+919999900002", healthy=True, rate_per_s=100_000))
        path = ROOT / "campaigns" / "examples" / "turnout_sms.template.yaml"
        templates.store(db, templates.parse_file(path.read_text(), str(path)))
        pricing.set_price(db, "sms", "91", PRICE, "INR")
        pricing.set_price(db, "whatsapp", "91", PRICE, "INR")
        db.execute(text("UPDATE contact_tags SET value = '4' WHERE contact_id % 2 = 0"))
        db.execute(text("UPDATE contacts SET name = 'आशा ' || id WHERE id % 2 = 0"))
    with rt.db.session() as db:
        db.execute(text("ANALYZE"))
    ids = {}
    for ward in ("3", "4"):
        with rt.db.session() as db:
            campaign = operations.create(db, spec.parse(SPEC.format(ward=ward), "bench.yaml"), region="IN")
            assert campaign.status == "ready", campaign.problems
            ids[ward] = campaign.id
        operations.launch(rt, ids[ward])
    return ids


class _Run:
    """One campaign's rows, claimed and settled a chunk at a time (``bench.claim_cpu``'s loop)."""

    def __init__(self, world: World, campaign_id: int, chunk: int) -> None:
        from bot.flowlibrary import FlowLibrary
        from campaigns import compliance
        from campaigns.fallback import step_for
        from campaigns.models import Campaign, Recipient

        self.rt, self.campaign_id, self.chunk = world.rt, campaign_id, chunk
        with self.rt.db.session() as db:
            self.campaign = db.get(Campaign, campaign_id)
            assert self.campaign is not None
            found = db.scalars(
                text("SELECT DISTINCT batch FROM campaign_recipients WHERE campaign_id = :c AND batch IS NOT NULL"),
                {"c": campaign_id},
            ).all()
            self.batches = iter(sorted(found))
            self.batch = next(self.batches)
            self.step = step_for(db, self.campaign, self.batch)
            flow = FlowLibrary(db).get(self.campaign.flow_name or "", self.campaign.flow_version)
            self.policy = compliance.policy_for(self.rt.settings, self.campaign, db)
            db.expunge_all()
        assert self.step is not None and flow is not None and Recipient is not None
        self.flow = flow[0]
        self.claim_s = 0.0
        self.rows = 0
        self.done = False

    def advance(self, *, warm: bool) -> None:
        from bot.db import utcnow
        from campaigns.claims import Outcome, claim, next_pending
        from campaigns.settlement import settle

        if self.done:
            return
        t0 = time.thread_time()
        with self.rt.db.session(write=True) as db:
            ids: list[Any] = next_pending(db, self.campaign_id, self.batch, self.chunk, set())
            while not ids and (batch := next(self.batches, -1)) >= 0:
                self.batch = batch
                ids = next_pending(db, self.campaign_id, batch, self.chunk, set())
            if not ids:
                self.done = True
                return
            claimed, _ = claim(db, self.campaign, self.step, self.flow, ids, utcnow(), self.policy)
        spent = time.thread_time() - t0
        with self.rt.db.session(write=True) as db:
            settle(db, [Outcome(c, "sent", provider_id=f"SM{c.message_id:032x}") for c in claimed], utcnow())
        if not warm:
            self.claim_s += spent
            self.rows += len(claimed)

    def per_row_ms(self) -> float:
        return self.claim_s * 1e3 / max(self.rows, 1)


def _spend(world: World, campaign_id: int) -> tuple[float, int]:
    with world.rt.db.session() as db:
        spent, rows = db.execute(
            text(
                "SELECT coalesce(sum(cost_micros), 0), count(*) FROM campaign_recipients "
                "WHERE campaign_id = :c AND status = 'sent'"
            ),
            {"c": campaign_id},
        ).one()
    return int(spent) / 1e6, int(rows)


if __name__ == "__main__":
    sys.exit(main())
