"""SMS through Twilio Programmable Messaging.

Messages go from our E.164 number, or through a Messaging Service when the message (or
the account) names one; Twilio then picks the sender from the service's pool. SMS has no
buttons, so quick replies are appended to the body as numbered lines ("1. Yes") and the
voter answers with the number or the word. Media URLs make the message an MMS.
"""

from __future__ import annotations

from bot.channels.base import register
from bot.channels.twilio_base import TwilioMessaging


@register
class TwilioSMS(TwilioMessaging):
    """SMS and MMS sent and received through Twilio."""

    name = "twilio_sms"
    channel = "sms"
    prefix = ""
