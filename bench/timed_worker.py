"""``python worker.py``, recording the moment of every provider call (for bench.limiter).

    CANVASS_BENCH_CALLS=FILE python -m bench.timed_worker [worker.py's arguments]

The twilio provider's ``create`` and ``send_async`` append ``time.time()`` to FILE (one line per call, an
O_APPEND write, so forked jobs and threads never interleave a line) just before the SDK
call, then the real worker runs. The fake Twilio's arrival times include its own
scheduling on a busy machine; these are the moments canvass let the sends go.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import worker
from bot.channels import twilio_base


def main() -> int:
    path = os.environ["CANVASS_BENCH_CALLS"]
    create = twilio_base.TwilioMessaging.create
    send_async = twilio_base.TwilioMessaging.send_async

    def record() -> None:
        line = f"{time.time():.6f}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def timed(self: twilio_base.TwilioMessaging, params: Any) -> Any:
        record()
        return create(self, params)

    async def timed_async(self: twilio_base.TwilioMessaging, message: Any) -> Any:
        record()
        return await send_async(self, message)

    twilio_base.TwilioMessaging.create = timed  # type: ignore[method-assign]
    twilio_base.TwilioMessaging.send_async = timed_async  # type: ignore[method-assign]
    return worker.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
