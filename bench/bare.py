"""The baseline for bench/inbound.py: a bare Flask endpoint under the same gunicorn settings."""

from flask import Flask

app = Flask(__name__)


@app.post("/webhooks/twilio/messages")
def inbound() -> tuple[str, int]:
    return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', 200
