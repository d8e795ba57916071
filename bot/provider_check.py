"""Test a provider's connection: can canvass reach it with the credentials it was given?

For Twilio the account itself is fetched (``GET /2010-04-01/Accounts/{sid}.json``) with
the twilio SDK, at ``TWILIO_API_BASE``: it needs the same credentials and network path
as every send, and changes nothing. The sandbox lives inside canvass, so it always
answers.
"""

from __future__ import annotations

import dataclasses

from bot.channels.base import SendError
from bot.channels.twilio_base import TwilioAccount, call_twilio, make_client
from bot.settings import Settings

# A test is a person waiting on a page: never longer than this, whatever TWILIO_TIMEOUT_S says.
MAX_WAIT_S = 10.0


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Whether the provider answered, in words, with what it said about the account."""

    provider: str
    ok: bool
    message: str
    details: dict[str, str] = dataclasses.field(default_factory=dict)


def check(settings: Settings, provider: str) -> CheckResult:
    """Try ``provider`` (``sandbox`` or ``twilio``) with the configured settings."""
    if provider == "sandbox":
        return CheckResult(
            "sandbox", True, "The sandbox runs inside canvass: messages are kept here, nothing to reach."
        )
    if provider != "twilio":
        return CheckResult(provider, False, f"provider: sandbox or twilio, got {provider!r}")
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return CheckResult(
            "twilio", False, "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, then restart."
        )
    account = TwilioAccount.from_settings(settings)
    account = dataclasses.replace(account, timeout_s=min(account.timeout_s, MAX_WAIT_S))
    client = make_client(account)
    try:
        found = call_twilio(lambda: client.api.v2010.accounts(account.account_sid).fetch(), "the account")
    except SendError as exc:
        return CheckResult("twilio", False, f"{exc} (at {account.api_base})")
    details = {
        "account": str(found.sid or ""),
        "name": str(found.friendly_name or ""),
        "status": str(found.status or ""),
        "type": str(found.type or ""),
    }
    if details["status"] and details["status"] != "active":
        return CheckResult("twilio", False, f"Twilio answered, but the account is {details['status']}.", details)
    return CheckResult(
        "twilio",
        True,
        f"Twilio answered at {account.api_base}: account {details['name'] or details['account']} is reachable.",
        details,
    )
