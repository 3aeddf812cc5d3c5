"""Send one message through the relay as an application would (smtplib, STARTTLS,
AUTH PLAIN), show it spooled, then wait for the relay to deliver it to the local sink
(sink.py) and verify the delivered copy's DKIM signature.

    python send_one.py PORT USERNAME PASSWORD

Run from the folder holding postform.yaml, after `postform apply`, while
`postform relay serve --self-signed` listens on 127.0.0.1:PORT and sink.py runs.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import dkim


def main() -> int:
    port, username, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    msg = EmailMessage()
    msg["From"] = "Billing <billing@example.com>"
    msg["To"] = "customer@example.org"
    msg["Subject"] = "Your invoice"
    msg.set_content("Thank you for your order.\n")

    context = ssl.create_default_context()
    context.check_hostname = False  # --self-signed: a trial certificate, not verifiable
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.starttls(context=context)
        client.login(username, password)
        client.mail("billing@example.com")
        client.rcpt("customer@example.org")
        code, reply = client.data(msg.as_bytes().replace(b"\n", b"\r\n"))
    print(f"relay answered: {code} {reply.decode()}")
    queue_id = reply.decode().rsplit(" ", 1)[-1]

    spooled = Path(".postform/relay/spool/queue") / f"{queue_id}.msg"
    raw = spooled.read_bytes().split(b"\n", 2)
    envelope, message = json.loads(raw[1]), raw[2]
    print(
        f"\nspooled as {spooled} (envelope: from {envelope['mail_from']} to "
        f"{', '.join(envelope['rcpt_tos'])}); its header:\n"
    )
    print(message.split(b"\r\n\r\n", 1)[0].decode())

    delivered = wait_for_sink(Path("sink"), timeout=20)
    print(f"\ndelivered to the sink as {delivered}")
    records = json.loads(
        subprocess.run(
            ["postform", "dns", "records", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["records"]
    txt = {r["name"]: r["value"] for r in records}
    signed = delivered.read_bytes().split(b"\r\n", 3)[3]  # Received is added after signing

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return txt.get(name.decode().rstrip("."), "").encode()

    ok = dkim.verify(signed, dnsfunc=dnsfunc)
    print(
        f"DKIM signature of the delivered copy verified with dkimpy against the DNS "
        f"record postform computed: {ok}"
    )
    return 0 if ok else 1


def wait_for_sink(folder: Path, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob("*.eml"))
        if found:
            return found[0]
        time.sleep(0.1)
    raise SystemExit(f"nothing reached the sink within {timeout:g} s")


if __name__ == "__main__":
    sys.exit(main())
