"""`relay serve --workers N`: N processes behave as one relay to an operator."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from tests.knot import free_port
from tests.relayproc import RelayProcess, message


def scrape(port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_metrics_are_the_sum_of_every_worker(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay")
    metrics = free_port()
    relay.start("--workers", "2", "--metrics", f"127.0.0.1:{metrics}")
    try:
        relay.wait_for(lambda: len(relay.events("listening")) == 4, what="both workers")
        sent = 16  # one session each: the kernel spreads them over both workers
        for i in range(sent):
            client = relay.smtp()
            client.sendmail("noreply@example.com", [f"r{i}@example.org"], message())
            client.quit()
        relay.wait_for(lambda: len(relay.events("accepted")) == sent, what="accepted")
        text = scrape(metrics)
        line = 'postform_messages_total{outcome="accepted",sender_domain="example.com"}'
        assert f"{line} {float(sent)}" in text, text
    finally:
        assert relay.stop() == 0


def test_a_worker_that_cannot_start_reports_it_as_a_json_event(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay")
    (relay.folder / "tls" / "relay.crt").write_text("not a certificate\n")
    port = free_port()
    result = relay.postform(
        "relay", "serve", "--workers", "2", "--listen", f"127.0.0.1:{port}", check=False
    )
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    errors = [r for r in records if r["event"] == "worker_error"]
    assert errors and all("SSLError" in r["error"] or "PEM" in r["error"] for r in errors)
