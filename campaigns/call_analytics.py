"""A call campaign's analytics: answer rate, completion rate, drop-off per question, duration.

Counted from the campaign's calls and the flow sessions they ran, in a few grouped
queries (no per-voter work):

- **answer rate**: voters a person answered (not a machine) / voters called;
- **completion rate**: answered calls whose flow reached its end / answered calls;
- **drop-off per question**: for each question (``ask`` node) in the flow's order, the
  calls that heard it, the calls that answered it, and the calls that hung up there;
- **average duration** of answered calls, in seconds.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.orm import Session

from bot.flowlibrary import FlowLibrary
from bot.models import Answer, FlowSession, Message
from campaigns.models import Campaign
from ivr.models import Call


@dataclasses.dataclass(frozen=True)
class Question:
    """One question of the flow on this campaign's calls."""

    node: str
    heard: int
    answered: int
    hung_up: int

    @property
    def drop_off(self) -> float:
        """Share of the calls that heard it and hung up there."""
        return self.hung_up / self.heard if self.heard else 0.0


@dataclasses.dataclass(frozen=True)
class CallStats:
    """The numbers of one call campaign."""

    calls: int
    voters_called: int
    voters_answered: int
    machines: int
    answered_calls: int
    completed_flows: int
    average_duration_s: float | None
    questions: list[Question]

    @property
    def answer_rate(self) -> float:
        """Voters a person answered / voters called."""
        return self.voters_answered / self.voters_called if self.voters_called else 0.0

    @property
    def completion_rate(self) -> float:
        """Answered calls whose flow ended normally / answered calls."""
        return self.completed_flows / self.answered_calls if self.answered_calls else 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for the API and the console's JSON."""
        return {
            "calls": self.calls,
            "voters_called": self.voters_called,
            "voters_answered": self.voters_answered,
            "machines": self.machines,
            "answer_rate": round(self.answer_rate, 4),
            "completion_rate": round(self.completion_rate, 4),
            "average_duration_s": None if self.average_duration_s is None else round(self.average_duration_s, 1),
            "questions": [
                {
                    "node": q.node,
                    "heard": q.heard,
                    "answered": q.answered,
                    "hung_up": q.hung_up,
                    "drop_off": round(q.drop_off, 4),
                }
                for q in self.questions
            ],
        }


def measure(db: Session, campaign: Campaign) -> CallStats:
    """Count the campaign's calls."""
    mine = Call.campaign_id == campaign.id
    person = and_(Call.answered_at.is_not(None), func.coalesce(Call.answered_by, "human") != "machine")
    calls, called, machines, answered_calls, average = db.execute(
        select(
            func.count(),
            func.count(distinct(Call.recipient_id)),
            func.count().filter(Call.answered_by == "machine"),
            func.count().filter(person),
            func.avg(Call.duration_s).filter(person),
        ).where(mine, Call.sid.is_not(None))
    ).one()
    answered_voters = db.scalar(select(func.count(distinct(Call.recipient_id))).where(mine, person)) or 0
    completed = (
        db.scalar(
            select(func.count())
            .select_from(Call)
            .join(FlowSession, FlowSession.id == Call.session_id)
            .where(mine, person, FlowSession.end_reason == "completed")
        )
        or 0
    )
    return CallStats(
        calls=calls or 0,
        voters_called=called or 0,
        voters_answered=answered_voters,
        machines=machines or 0,
        answered_calls=answered_calls or 0,
        completed_flows=completed,
        average_duration_s=float(average) if average is not None else None,
        questions=_questions(db, campaign),
    )


def _questions(db: Session, campaign: Campaign) -> list[Question]:
    found = FlowLibrary(db).get(campaign.flow_name or "", campaign.flow_version)
    if found is None:
        return []
    flow = found[0]
    asks = [(node_id, getattr(node, "save", None)) for node_id, node in flow.nodes.items() if node.kind == "ask"]
    if not asks:
        return []
    sessions = select(Call.session_id).where(Call.campaign_id == campaign.id, Call.session_id.is_not(None))
    heard = dict(
        db.execute(
            select(Message.node, func.count(distinct(Message.session_id)))
            .where(Message.session_id.in_(sessions), Message.direction == "out", Message.node.is_not(None))
            .group_by(Message.node)
        ).all()
    )
    saves = [save for _, save in asks if save]
    answered = dict(
        db.execute(
            select(Answer.name, func.count(distinct(Answer.session_id)))
            .where(Answer.session_id.in_(sessions), Answer.name.in_(saves))
            .group_by(Answer.name)
        ).all()
    )
    hung_up = dict(
        db.execute(
            select(Call.last_node, func.count())
            .join(FlowSession, FlowSession.id == Call.session_id)
            .where(Call.campaign_id == campaign.id, FlowSession.end_reason == "call_ended")
            .group_by(Call.last_node)
        ).all()
    )
    return [
        Question(node, int(heard.get(node, 0)), int(answered.get(save, 0)) if save else 0, int(hung_up.get(node, 0)))
        for node, save in asks
    ]
