"""WhatsApp through Twilio Programmable Messaging.

Addresses carry Twilio's channel prefix (``whatsapp:+9198...``) on the wire; canvass keeps
bare E.164 numbers and adds or strips the prefix here. Inside the 24-hour customer-care
window a message is free-form text with media; outside it only an approved template may
be sent (``content_sid`` with ``content_variables`` such as ``{"1": "Asha"}``), otherwise
Twilio refuses with 63016.

Quick replies: real WhatsApp buttons need an approved Content API template (a
``twilio/quick-reply`` content), which the campaigns work brings. Without a
``content_sid`` the choices are appended to the body as numbered lines, as for SMS, and
the voter answers with the number or the word. Button taps on templates arrive as
``ButtonPayload`` / ``ButtonText`` in the inbound request.
"""

from __future__ import annotations

from bot.channels.base import register
from bot.channels.twilio_base import TwilioMessaging


@register
class TwilioWhatsApp(TwilioMessaging):
    """WhatsApp messages sent and received through Twilio."""

    name = "twilio_whatsapp"
    channel = "whatsapp"
    prefix = "whatsapp:"
