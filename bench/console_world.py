"""The world of the console benchmark: a million voters and a 100,000-recipient campaign, on PostgreSQL.

Built on ``bench/campaign_world.py`` (voters with ``ward`` and ``volunteer`` tags, open and
closed handoff cases, earlier campaigns) and ``bench/export.py``'s played sends, then:

- a ``drive=nov`` tag on 100,000 voters picked by a hash of their id (so every skip
  branch of the planner has its usual share), and the booth campaign launched to them:
  its recipients are planned by the real planner, skipped ones with their skip codes;
- the sends played (``bench.export.play_sends``: 95 % sent, 5 % failed; 30 % replied
  with two funnel steps and two answers, 20 % finished the flow), then spread over more
  statuses: some only ``sent``, a few ``unknown``, ``undelivered``, several error codes;
- the messages those sends and replies left (campaign message, the voter's replies, the
  flow's questions), and one message from each voter with an open case;
- conversations outside the campaign: a keyword flow's session, with two funnel steps,
  for a quarter of the voters (most sessions belong to no given campaign);
- one voter with a long history (thousands of messages, funnel steps in many sessions,
  consent changes, handoff cases);
- 25 more campaigns in every status, and a ready campaign to everyone (``tag: ward``);
- an admin, with some open cases assigned to them.

Every row is made in bulk SQL; nothing random (hashes of ids choose).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

ADMIN = "admin@bench.canvass"
PASSWORD = "a long benchmark passphrase"
DRIVE = {"tag": "drive", "eq": "nov"}
# A voter of the campaign who replied, with a long timeline (filled in by ``long_history``).
STATUSES = ("draft", "ready", "scheduled", "active", "paused", "completed", "ended", "aborted")
MORE_CAMPAIGNS = 25
HISTORY_MESSAGES = 5000
HISTORY_SESSIONS = 100

# Bucket 0..99 of a voter, from a hash of its id (uniform whatever the id's residues).
BUCKET = "(abs(hashint8(r.contact_id)) % 100)"
CODE = f"(ARRAY['63016', '30003', '30005', '30008', '63024', '21614'])[1 + {BUCKET} % 6]"

SPREAD = [
    # Some sends only reached "sent" (no delivery receipt yet), a few are unknown; only
    # voters who did not reply (contact_id % 10 >= 3 in play_sends) are touched.
    f"""UPDATE campaign_recipients r SET status = 'sent', delivered_at = NULL, read_at = NULL
        WHERE r.campaign_id = :c AND r.status IN ('delivered', 'read') AND r.contact_id % 10 >= 3
          AND {BUCKET} < 4""",
    f"""UPDATE campaign_recipients r SET status = 'unknown', error_code = 'timeout', delivered_at = NULL,
            read_at = NULL, sent_at = NULL
        WHERE r.campaign_id = :c AND r.status IN ('delivered', 'read') AND r.contact_id % 10 >= 3
          AND {BUCKET} = 4 AND r.contact_id % 7 = 0""",
    # Failures with several codes (play_sends gave them all 63016), some undelivered.
    f"""UPDATE campaign_recipients r SET
            status = CASE WHEN {BUCKET} < 30 THEN 'undelivered' ELSE 'failed' END,
            error_code = {CODE}, error_msg = 'provider error ' || {CODE}
        WHERE r.campaign_id = :c AND r.status = 'failed'""",
]

# Conversations outside the campaign (keyword flows), a quarter of the voters: most
# sessions and funnel steps in a real database belong to no given campaign.
OUTSIDE = [
    """INSERT INTO flow_sessions (contact_id, flow_name, flow_version, channel, status, state, started_at,
            updated_at, replied_at, ended_at, end_reason)
        SELECT id, 'turnout_reminder', 1, 'sms', 'ended', '{}', t, t, t, t + interval '1 minute', 'completed'
        FROM contacts, LATERAL (SELECT timestamptz '2026-10-01 06:00:00+00' + id * interval '1 second' AS t) x
        WHERE id % 4 = 1""",
    """INSERT INTO funnel_events (session_id, contact_id, flow_name, step, reached_at)
        SELECT s.id, s.contact_id, s.flow_name, x.step, s.started_at + x.after FROM flow_sessions s
        CROSS JOIN (VALUES ('reminded', interval '0 s'), ('answered', interval '30 s')) AS x(step, after)
        WHERE s.flow_name = 'turnout_reminder'""",
]

MESSAGES = [
    # The campaign's opening message, one per recipient handed to the provider.
    """INSERT INTO messages (contact_id, session_id, sender_id, campaign_id, recipient_id, direction, purpose,
            channel, body, media, choices, node, status, error_code, attempts, created_at, sent_at, delivered_at,
            read_at, failed_at)
        SELECT r.contact_id, r.session_id, c.sender_id, r.campaign_id, r.id, 'out', 'campaign', 'whatsapp',
            'Namaste! Polling day is near. Do you know your polling booth? Reply 1 for yes, 2 for no.',
            '[]', '[]', 'knows', r.status, r.error_code, 1, r.sending_at, r.sent_at, r.delivered_at, r.read_at,
            r.failed_at
        FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
        WHERE r.campaign_id = :c AND r.status <> 'skipped'""",
    """UPDATE campaign_recipients r SET message_id = m.id FROM messages m
        WHERE m.recipient_id = r.id AND r.campaign_id = :c""",
    # The voters who replied: their answer, the flow's next question, their EPIC number.
    """INSERT INTO messages (contact_id, session_id, sender_id, campaign_id, direction, purpose, channel, body,
            media, choices, node, status, attempts, created_at, sent_at, delivered_at)
        SELECT s.contact_id, s.id, c.sender_id, NULL, x.direction, 'flow', 'whatsapp', x.body, '[]', '[]', x.node,
            x.status, x.attempts, s.replied_at + x.after, s.replied_at + x.after,
            CASE WHEN x.direction = 'out' THEN s.replied_at + x.after + interval '4 seconds' END
        FROM flow_sessions s JOIN campaigns c ON c.id = s.campaign_id
        CROSS JOIN (VALUES ('in', '2', NULL, 'received', 0, interval '0 seconds'),
                           ('out', 'Please send your EPIC (voter ID) number.', 'epic', 'delivered', 1,
                            interval '2 seconds'),
                           ('in', 'ABC1234567', NULL, 'received', 0, interval '78 seconds'))
            AS x(direction, body, node, status, attempts, after)
        WHERE s.campaign_id = :c AND s.replied_at IS NOT NULL""",
    # A message from each voter whose conversation waits in the inbox.
    """INSERT INTO messages (contact_id, direction, purpose, channel, body, media, choices, status, attempts,
            created_at)
        SELECT h.contact_id, 'in', 'flow', 'whatsapp', 'I need to talk to someone', '[]', '[]', 'received', 0,
            h.opened_at - interval '1 minute'
        FROM handoff_cases h WHERE h.status = 'open'""",
]


def long_history(conn: Any, contact_id: int) -> None:
    """Thousands of messages, many sessions' funnel steps, consent changes and cases for one voter."""
    start = "timestamptz '2026-06-01 06:00:00+00'"
    conn.execute(
        text(f"""INSERT INTO flow_sessions (contact_id, flow_name, flow_version, channel, status, state,
                started_at, updated_at, replied_at, ended_at, end_reason)
            SELECT :v, 'booth_locator', 1, 'whatsapp', 'ended', '{{}}', {start} + n * interval '1 day',
                {start} + n * interval '1 day', {start} + n * interval '1 day',
                {start} + n * interval '1 day' + interval '1 minute', 'completed'
            FROM generate_series(1, :n) n"""),
        {"v": contact_id, "n": HISTORY_SESSIONS},
    )
    conn.execute(
        text("""INSERT INTO funnel_events (session_id, contact_id, flow_name, step, reached_at)
            SELECT s.id, s.contact_id, s.flow_name, x.step, s.started_at + x.after FROM flow_sessions s
            CROSS JOIN (VALUES ('greeted', interval '0 s'), ('answered', interval '20 s'),
                               ('epic_given', interval '40 s'), ('booth_shared', interval '50 s')) AS x(step, after)
            WHERE s.contact_id = :v AND s.campaign_id IS NULL"""),
        {"v": contact_id},
    )
    conn.execute(
        text(f"""INSERT INTO messages (contact_id, direction, purpose, channel, body, media, choices, status,
                attempts, created_at, sent_at, delivered_at, read_at)
            SELECT :v, CASE WHEN n % 2 = 0 THEN 'in' ELSE 'out' END, 'flow',
                CASE WHEN n % 5 = 0 THEN 'sms' ELSE 'whatsapp' END,
                'Message number ' || n || ' of a long conversation about the polling booth', '[]', '[]',
                CASE WHEN n % 2 = 0 THEN 'received' ELSE 'read' END, n % 2,
                {start} + n * interval '40 minutes',
                CASE WHEN n % 2 = 1 THEN {start} + n * interval '40 minutes' END,
                CASE WHEN n % 2 = 1 THEN {start} + n * interval '40 minutes' + interval '3 s' END,
                CASE WHEN n % 2 = 1 THEN {start} + n * interval '40 minutes' + interval '60 s' END
            FROM generate_series(1, :n) n"""),
        {"v": contact_id, "n": HISTORY_MESSAGES},
    )
    conn.execute(
        text(f"""INSERT INTO consent_events (contact_id, status, channel, source, created_at)
            SELECT :v, CASE WHEN n % 2 = 0 THEN 'opted_in' ELSE 'opted_out' END, 'whatsapp', 'keyword',
                {start} + n * interval '5 days' FROM generate_series(1, 30) n"""),
        {"v": contact_id},
    )
    conn.execute(
        text(f"""INSERT INTO handoff_cases (contact_id, status, note, reason, opened_at, closed_at)
            SELECT :v, 'closed', 'booth', 'could not answer the booth question', {start} + n * interval '9 days',
                {start} + n * interval '9 days' + interval '2 hours' FROM generate_series(1, 15) n"""),
        {"v": contact_id},
    )


def build(url: str, schema: str, contacts: int, recipients: int, redis_url: str) -> dict[str, Any]:
    """Build the world in ``schema``; return its URL, ids and counts."""
    from bench import campaign_world
    from bench.dbsetup import fresh_database
    from bench.export import play_sends
    from campaigns import operations
    from web.users import create_user

    started = time.perf_counter()
    db = fresh_database(url, schema)
    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()
    rt = campaign_world.runtime(url, redis_url)
    rt.redis.flushdb()  # the benchmark's own Redis database
    campaign_world.seed(rt)
    earlier = campaign_world.build(rt, contacts)
    with rt.db.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO contact_tags (contact_id, name, value)
                SELECT id, 'drive', 'nov' FROM contacts ORDER BY hashint8(id) LIMIT :n"""),
            {"n": recipients},
        )
    campaign_world.analyze(rt.db)
    everyone = campaign_world.booth_campaign(rt, name="Booth reminder to every ward")
    campaign = campaign_world.booth_campaign(rt, name="Booth reminder, November drive", segment=DRIVE)
    operations.launch(rt, campaign, now=campaign_world.NOW)
    rt.redis.flushdb()  # nobody sends them: the sends are played
    counts = play_sends(rt, campaign)
    more = [
        campaign_world.other_campaign(rt, f"Outreach {n} ({status})", status)
        for n, status in enumerate(STATUSES * (MORE_CAMPAIGNS // len(STATUSES) + 1), 1)
    ][:MORE_CAMPAIGNS]
    with rt.db.session() as s:
        admin = create_user(s, ADMIN, "admin", PASSWORD).id
    with rt.db.engine.begin() as conn:
        for sql in SPREAD + MESSAGES + OUTSIDE:
            conn.execute(text(sql), {"c": campaign})
        conn.execute(
            text("""UPDATE handoff_cases SET assignee_id = :a WHERE id IN
                (SELECT id FROM handoff_cases WHERE status = 'open' ORDER BY id LIMIT 60)"""),
            {"a": admin},
        )
        # The replying voter with the most ordinary id of the campaign gets the long history.
        voter = conn.execute(
            text("""SELECT r.contact_id FROM campaign_recipients r JOIN flow_sessions s ON s.id = r.session_id
                WHERE r.campaign_id = :c AND s.replied_at IS NOT NULL ORDER BY r.contact_id LIMIT 1"""),
            {"c": campaign},
        ).scalar_one()
        long_history(conn, voter)
        for table in ("flow_sessions", "messages", "handoff_cases", "consent_events"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        counts.update(
            {
                name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                for name in (
                    "contacts",
                    "contact_tags",
                    "campaigns",
                    "messages",
                    "handoff_cases",
                    "flow_sessions",
                    "funnel_events",
                )
            }
        )
        counts["campaign_recipients"] = conn.execute(
            text("SELECT count(*) FROM campaign_recipients WHERE campaign_id = :c"), {"c": campaign}
        ).scalar_one()
        counts["voter_messages"] = conn.execute(
            text("SELECT count(*) FROM messages WHERE contact_id = :v"), {"v": voter}
        ).scalar_one()
    campaign_world.analyze(rt.db)
    rt.close()
    return {
        "url": url,
        "campaign": campaign,
        "ready_campaign": everyone,
        "earlier": earlier,
        "more": more,
        "voter": voter,
        "counts": counts,
        "build_s": round(time.perf_counter() - started, 1),
    }
