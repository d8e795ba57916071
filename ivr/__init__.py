"""Voice: TwiML, keypad input, text-to-speech and calls (issue 7)."""
