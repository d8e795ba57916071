"""Simulated inbound calls through Twilio's voice webhooks, for ``bench.voice``.

Each call is what Twilio does when a voter calls the line and presses 1, 2, 3: the answer
webhook, one keypad step per question posted to the action URL of the TwiML just
received, then a ``completed`` status callback; every request signed with the twilio
SDK's RequestValidator. Each answer is checked: an apology, a prompt spoken with
``<Say>`` (not pre-rendered) or a missing ``<Gather>`` counts as an error.
"""

from __future__ import annotations

import asyncio
import collections
import xml.etree.ElementTree as ET

from twilio.request_validator import RequestValidator

from bench.loopback import Form, OpenLoop, Trial, signed

TOKEN = "bench-voice-token"
SID = "AC" + "0123456789abcdef" * 2
LINE = "+911140000007"
DIGITS = "123"  # one key per question of ivr_survey: will vote, knows the booth, transport
REQUESTS_PER_CALL = 1 + len(DIGITS) + 1  # answer, the steps, the status callback
APOLOGY = "Sorry, something went wrong on our side"


class Calls:
    """Simulated inbound calls to the voice line, each request signed as Twilio signs it.

    Every call has a CallSid and a voter of its own. ``completed`` collects the calls whose
    every request was answered as expected; ``problems`` counts the documents that were not.
    """

    def __init__(self, base: str, run_id: str) -> None:
        self.base = base
        self.answer_url = f"{base}/webhooks/twilio/voice"
        self.status_url = f"{base}/webhooks/twilio/call-status"
        self.validator = RequestValidator(TOKEN)
        self.run_id = run_id
        self.count = 0
        self.completed: set[str] = set()
        self.problems: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()  # HTTP status -> count, every offer

    def offer(self, rate: int, seconds: float, gap: float) -> Trial:
        """Offer ``rate`` requests per second for about ``seconds`` (plus the calls' last steps).

        A call starts every ``5 / rate`` seconds. Its requests are about ``gap`` apart,
        rounded so that they fall between other calls' requests: once the first calls
        are in their last steps, a request leaves every ``1 / rate`` seconds.
        """
        calls = max(1, int(rate * seconds / REQUESTS_PER_CALL))
        first, self.count = self.count, self.count + calls
        every = REQUESTS_PER_CALL / rate
        spacing = (max(1, round(gap / every)) + 1 / REQUESTS_PER_CALL) * every
        # Signed before the clock starts: the answer and the status callback go to fixed URLs.
        prepared = [self._forms(first + c) for c in range(calls)]

        async def run() -> Trial:
            async with OpenLoop(rate) as loop:
                await asyncio.gather(*(self._call(loop, c * every, spacing, *prepared[c]) for c in range(calls)))
            return loop.trial

        trial = asyncio.run(run())
        self.statuses.update(trial.statuses)
        return trial

    def _forms(self, n: int) -> tuple[dict[str, str], Form, Form]:
        fields = {
            "AccountSid": SID,
            "CallSid": f"CA{self.run_id}{n:024x}",
            "From": f"+9197{n:08d}",
            "To": LINE,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        answer = signed(self.validator, self.answer_url, {**fields, "CallStatus": "ringing"})
        status = signed(self.validator, self.status_url, {**fields, "CallStatus": "completed", "CallDuration": "31"})
        return fields, answer, status

    async def _call(
        self, loop: OpenLoop, at: float, gap: float, fields: dict[str, str], answer: Form, status: Form
    ) -> None:
        await loop.wait_until(at)
        body = await loop.send("POST", self.answer_url, answer, kind="answer")
        action = self._read(loop, body, last=False)
        for i, digit in enumerate(DIGITS):
            if action is None:
                return
            # The keys follow the answer: how late they leave is the server's doing, not the client's.
            at += gap
            await loop.wait_until(at, independent=False)
            form = {**fields, "CallStatus": "in-progress", "Digits": digit}
            body = await loop.send("POST", action, signed(self.validator, action, form), kind="step")
            action = self._read(loop, body, last=i == len(DIGITS) - 1)
        if action is None:
            return
        at += gap
        await loop.wait_until(at, independent=False)
        if await loop.send("POST", self.status_url, status, expect=204, kind="status") is not None:
            self.completed.add(fields["CallSid"])

    def _read(self, loop: OpenLoop, body: bytes | None, *, last: bool) -> str | None:
        """The action URL of a question's TwiML ("" after the last one), or None when it is wrong."""
        if body is None:
            return None
        problem, action = _problem(body, last)
        if problem:
            self.problems[problem] += 1
            loop.wrong()
            return None
        return action


def _problem(body: bytes, last: bool) -> tuple[str, str]:
    """What is wrong with a step's TwiML ("" when nothing), and its action URL."""
    text = body.decode("utf-8", "replace")
    if APOLOGY in text:
        return "apology", ""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return "not XML", ""
    if root.find(".//Say") is not None:
        return "a prompt spoken with <Say> (not pre-rendered)", ""
    if root.find(".//Play") is None:
        return "no <Play>", ""
    if last:
        return ("", "") if root[-1].tag == "Hangup" else ("the last question's answer does not hang up", "")
    gather = root.find("Gather")
    if gather is None or not gather.get("action"):
        return "no <Gather> with an action URL", ""
    return "", gather.get("action", "")
