"""espeak-ng: the offline default voice. Robotic, but it needs no network and no account.

The text reaches espeak-ng on its standard input, never on a command line, so nothing a
flow author writes can become an option or a shell command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.tts.base import TtsEngine, TtsError, Voice, pick_voice

# Language code -> espeak-ng voice (``espeak-ng --voices`` lists them all).
VOICES = {
    "en": "en-gb",
    "hi": "hi",
    "ta": "ta",
    "te": "te",
    "bn": "bn",
    "mr": "mr",
    "gu": "gu",
    "kn": "kn",
    "ml": "ml",
    "pa": "pa",
    "ur": "ur",
}
# Words per minute: a little slower than espeak-ng's 175, for a phone line and a first listen.
SPEED_WPM = 150
TIMEOUT_S = 30.0


class Espeak(TtsEngine):
    """Render with the ``espeak-ng`` program into a WAV file."""

    name = "espeak"

    def __init__(self, *, program: str = "espeak-ng", timeout_s: float = TIMEOUT_S) -> None:
        self.program = program
        self.timeout_s = timeout_s

    def voice(self, language: str | None) -> Voice:
        """The espeak-ng voice for ``language`` (English when it has none)."""
        return pick_voice(self.name, VOICES, language)

    def render(self, text: str, voice: Voice, workdir: Path) -> Path:
        """Speak ``text`` with ``voice`` into ``workdir/espeak.wav``.

        Raises:
            TtsError: espeak-ng is missing, failed (not retryable) or timed out (retryable).
        """
        out = workdir / "espeak.wav"
        command = [self.program, "-v", voice.id, "-s", str(SPEED_WPM), "-b", "1", "-w", str(out), "--stdin"]
        try:
            done = subprocess.run(
                command, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout_s, check=False
            )
        except FileNotFoundError:
            raise TtsError(
                self.name, f"{self.program} is not installed (scripts/system-deps.sh)", retryable=False
            ) from None
        except subprocess.TimeoutExpired:
            raise TtsError(self.name, f"{self.program} took longer than {self.timeout_s:g} s", retryable=True) from None
        if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = said[-1] if said else f"exit status {done.returncode}"
            raise TtsError(self.name, f"{self.program} failed: {reason}", retryable=False)
        return out
