"""Example rasa-sdk custom actions for the demo flows (``CANVASS_ACTIONS=flows.actions``).

The same package runs in process (``bot.rasa_bridge.ActionRunner``) or on Rasa's own
action server: ``python -m rasa_sdk --actions flows.actions``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

# Demo data: EPIC (voter ID) number -> (booth name, booth address).
BOOTHS = {
    "ABC1234567": ("Booth 14, Government Girls School", "Station Road, Ward 7"),
    "XYZ7654321": ("Booth 3, Community Hall", "Gandhi Nagar, Ward 12"),
}


def find_booth(epic: str) -> tuple[str, str]:
    """The booth for an EPIC number: from the demo data, else derived from the number.

    Args:
        epic: The voter's EPIC number (case and surrounding spaces do not matter).

    Returns:
        The booth's name and address. The fallback depends only on the number (a SHA-256
        digest, not ``hash()``, which changes between processes).
    """
    epic = epic.strip().upper()
    if epic in BOOTHS:
        return BOOTHS[epic]
    number = int(hashlib.sha256(epic.encode()).hexdigest(), 16) % 250 + 1
    return f"Booth {number}, Primary School", f"School Lane, Ward {number % 200 + 1}"


class ActionFindBooth(Action):
    """Look up the voter's polling booth from the ``epic`` slot."""

    def name(self) -> str:
        """The action's name in flows."""
        return "action_find_booth"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Set ``booth_name`` and ``booth_address``; without an EPIC number, reject.

        Raises:
            ActionExecutionRejection: The ``epic`` slot is empty.
        """
        epic = tracker.get_slot("epic")
        if not epic:
            raise ActionExecutionRejection(self.name(), "no EPIC number to look up")
        dispatcher.utter_message(text="Looking that up…")
        booth_name, booth_address = find_booth(str(epic))
        return [SlotSet("booth_name", booth_name), SlotSet("booth_address", booth_address)]


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


class ValidateVolunteerForm(FormValidationAction):
    """Check a volunteer sign-up (flows/volunteer_signup.yaml): name, ward and hours."""

    def name(self) -> str:
        """The action's name; the form it validates is ``volunteer_form``."""
        return "validate_volunteer_form"

    def validate_volunteer_name(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        """A name has at least two letters."""
        name = str(slot_value or "").strip()
        if sum(ch.isalpha() for ch in name) >= 2:
            return {"volunteer_name": name}
        dispatcher.utter_message(text="Please tell us your name (at least two letters).")
        return {"volunteer_name": None}

    def validate_volunteer_ward(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        """A ward is a whole number from 1 to 200."""
        ward = _whole_number(slot_value)
        if ward is not None and 1 <= ward <= 200:
            return {"volunteer_ward": ward}
        dispatcher.utter_message(text="Please send your ward number, from 1 to 200.")
        return {"volunteer_ward": None}

    def validate_volunteer_hours(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        """Hours are a whole number from 1 to 40."""
        hours = _whole_number(slot_value)
        if hours is not None and 1 <= hours <= 40:
            return {"volunteer_hours": hours}
        dispatcher.utter_message(text="Please send how many hours you can give, from 1 to 40.")
        return {"volunteer_hours": None}


class ActionSlow(Action):
    """Sleep for ``sleep_s`` seconds (default 5): shows that a slow action times out."""

    def name(self) -> str:
        """The action's name in flows."""
        return "action_slow_demo"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Block the thread (a synchronous action cannot be interrupted), then say so."""
        seconds = float(tracker.get_slot("sleep_s") or 5)
        time.sleep(seconds)
        dispatcher.utter_message(text=f"Done after {seconds:g} s.")
        return []
