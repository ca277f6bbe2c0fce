"""One partner-style test worker, run in its own process against a shared mock.

Each round it works in a sandbox of its own: pins its clock to an instant no other worker
uses, switches its own email faults, shares, emails, opens links, reads its outbox and
journal, and resets its project. Everything it observes is compared with what it alone
did; any difference is returned as a line saying what leaked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from mock_server.testing import Sandbox

_TRANSPORTS = (("outbox", False, 201), ("outbox", True, 502), ("none", False, 503))


def run_worker(base_url: str, worker: int, rounds: int) -> list[str]:
    """Run ``rounds`` rounds as worker ``worker``; the leaks seen (empty when isolated)."""
    leaks: list[str] = []

    def check(condition: bool, what: str) -> None:
        if not condition:
            leaks.append(f"worker {worker}: {what}")

    with Sandbox.create(base_url, f"worker {worker}") as sandbox, httpx.Client() as http:
        for round_ in range(rounds):
            start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=worker, hours=round_)
            sandbox.freeze()
            sandbox.set_time(start)
            transport, fails, expected = _TRANSPORTS[(worker + round_) % len(_TRANSPORTS)]
            sandbox.set_faults(emailTransport=transport, emailSendFails=fails)
            recipient = f"w{worker}r{round_}@example.com"
            shares = f"{base_url}/v1/renders/{sandbox.render_id}/shares"
            expiry = (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
            link = http.post(shares, headers=sandbox.headers, json={"expiresAt": expiry})
            check(link.status_code == 201, f"share answered {link.status_code}")
            sent = http.post(
                f"{base_url}/v1/renders/{sandbox.render_id}/email",
                headers=sandbox.headers,
                json={"to": recipient},
            )
            check(sent.status_code == expected, f"email {sent.status_code}, not {expected}")
            sandbox.advance(20 * 60)
            check(sandbox.now() == start + timedelta(minutes=20), "its clock moved by itself")
            opened = http.get(link.json()["shareUrl"])
            check(opened.status_code == 200, f"a link 20 minutes from expiry {opened.status_code}")
            faults = sandbox.faults()
            check(
                (faults["emailTransport"], faults["emailSendFails"]) == (transport, fails),
                f"faults changed under it: {faults}",
            )
            mail = sandbox.emails()
            wanted = [recipient] if expected == 201 else []
            check([m["to"] for m in mail] == wanted, f"outbox {[m['to'] for m in mail]}")
            journal = [(e["method"], e["status"]) for e in sandbox.requests()]
            check(
                journal == [("GET", 200), ("POST", expected), ("POST", 201)],
                f"journal {journal}",
            )
            sandbox.reset()
            check(sandbox.emails() == [] and sandbox.requests() == [], "reset left state")
            check(sandbox.faults()["emailTransport"] == "outbox", "reset left its faults")
            check(abs(sandbox.now() - datetime.now(UTC)) < timedelta(minutes=1), "reset clock")
    return leaks
