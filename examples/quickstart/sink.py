"""A local SMTP sink standing in for a recipient's mail server: every message it
receives is written to sink/<n>.eml. Used by the quickstart as the relay's smarthost.

    python sink.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Sink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
    ) -> str:
        self.count += 1
        path = self.folder / f"{self.count}.eml"
        path.write_bytes(envelope.original_content or b"")
        print(
            f"sink: received from {envelope.mail_from} for {', '.join(envelope.rcpt_tos)}"
            f" -> {path}",
            flush=True,
        )
        return "250 2.0.0 Stored in the sink"


async def main() -> None:
    folder = Path("sink")
    folder.mkdir(exist_ok=True)
    controller = Controller(
        Sink(folder), hostname="127.0.0.1", port=int(sys.argv[1]), server_hostname="sink.test"
    )
    controller.start()
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
