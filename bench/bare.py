"""The baseline of the web benchmarks: bare Flask endpoints under the same gunicorn settings.

``bench.inbound`` posts messages to it; ``bench.voice`` drives calls through it with the
same client as through canvass: the voice routes answer a fixed ``<Gather>`` whose action
URL leads to the next step (the third step hangs up), without checking, storing or
rendering anything, and ``/media/<name>`` sends a file of ``CANVASS_VAR_DIR/media``.
"""

import os
from pathlib import Path

from flask import Flask, Response, request, send_file

app = Flask(__name__)
STEPS = 3
GATHER = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="{url}" finishOnKey="#" input="dtmf" '
    'method="POST" numDigits="1" timeout="5"><Play>{play}</Play></Gather>'
    '<Redirect method="POST">{url}</Redirect></Response>'
)
HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Play>{play}</Play><Hangup /></Response>'


@app.post("/webhooks/twilio/messages")
def inbound() -> tuple[str, int]:
    return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', 200


@app.post("/webhooks/twilio/voice")
@app.post("/webhooks/twilio/voice/step")
def voice() -> Response:
    step = int(request.args.get("n", 0)) + 1
    play = f"{request.host_url}media/prompt.wav"
    if step > STEPS:
        return Response(HANGUP.format(play=play), mimetype="text/xml")
    url = f"{request.host_url}webhooks/twilio/voice/step?c=1&amp;n={step}&amp;s=0"
    return Response(GATHER.format(url=url, play=play), mimetype="text/xml")


@app.post("/webhooks/twilio/call-status")
def call_status() -> Response:
    return Response(status=204)


@app.get("/media/<name>")
def media(name: str) -> Response:
    root = Path(os.environ["CANVASS_VAR_DIR"]) / "media"
    return send_file(root / Path(name).name, mimetype="audio/wav", max_age=7 * 24 * 3600, conditional=True)
