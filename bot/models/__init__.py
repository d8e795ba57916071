"""Tables of the conversation core, one module per part, on the shared Base."""

from bot.models.contacts import BigId, Channel, ConsentEvent, ConsentStatus, Contact, ContactTag
from bot.models.conversations import (
    Answer,
    FlowSession,
    FunnelEvent,
    HandoffCase,
    Message,
    MessageStatus,
    MessageStatusEvent,
    Sender,
    advances,
)
from bot.models.flows import FlowVersion
from bot.models.inbound import QueuedInbound
from bot.models.policy import PolicyBlackout, PolicyWindow
from bot.models.segments import Segment

__all__ = [
    "Answer",
    "BigId",
    "Channel",
    "ConsentEvent",
    "ConsentStatus",
    "Contact",
    "ContactTag",
    "FlowSession",
    "FlowVersion",
    "FunnelEvent",
    "HandoffCase",
    "Message",
    "MessageStatus",
    "MessageStatusEvent",
    "PolicyBlackout",
    "PolicyWindow",
    "QueuedInbound",
    "Segment",
    "Sender",
    "advances",
]
