"""What webhooks cost the mock: delivery latency, and throughput with deliveries on and off.

Starts ``python -m mock_server`` (in memory) and, in this process, a ``WebhookReceiver`` on a
free loopback port. Then, in one run:

- **latency**: ``--samples`` shares made one after the other in a project subscribed to
  ``document.share_created``; for each, the time from the create's answer to the delivery's
  arrival at the receiver (the event is recorded before the answer, so this is at least the
  time from event to first attempt), p50/p90/p99;
- **throughput**: wrk's create-share rate in a project without a subscription, and in one
  whose every share is delivered to the receiver, same wrk settings.

The receiver shares this machine with the mock and wrk, as a partner's test would.

    python bench/webhooks.py [--samples 300] [--duration 10] [--connections 16] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import SHARE_BODY, running, write_section, wrk

from mock_server.testing import Sandbox, WebhookReceiver

MARK_BEGIN = "<!-- webhooks:begin -->"
MARK_END = "<!-- webhooks:end -->"
SECRET = "bench-webhook-secret"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(sandbox: Sandbox, receiver: WebhookReceiver, samples: int) -> list[float]:
    """Milliseconds from each create's answer to its delivery's arrival."""
    found: list[float] = []
    with httpx.Client(base_url=sandbox.base_url, headers=sandbox.headers) as api:
        for _ in range(samples):
            created = api.post(f"/v1/renders/{sandbox.render_id}/shares", json={})
            answered = time.time()
            share_id = created.json()["id"]
            delivery = receiver.wait_for("document.share_created", timeout=10, shareId=share_id)
            found.append((delivery.received_at - answered) * 1000)
    return found


def main() -> None:
    """Measure, print, and with ``--write`` keep the report in BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="put the report in BENCHMARKS.md")
    args = parser.parse_args()
    command = [sys.executable, "-m", "mock_server", "--port", "{port}"]
    with (
        running(command, "/health") as base_url,
        WebhookReceiver(SECRET) as receiver,
        Sandbox.create(base_url) as quiet,
        Sandbox.create(base_url) as loud,
    ):
        loud.subscribe(receiver.url, SECRET, events=["document.share_created"])
        measured = latencies(loud, receiver, args.samples)
        off = wrk(
            "mock", "create share", f"{base_url}/v1/renders/{quiet.render_id}/shares",
            args, SHARE_BODY, key=quiet.api_key,
        )  # fmt: skip
        on = wrk(
            "mock", "create share", f"{base_url}/v1/renders/{loud.render_id}/shares",
            args, SHARE_BODY, key=loud.api_key,
        )  # fmt: skip
        delivered = len(receiver.deliveries)
    lines = [
        f"`python bench/webhooks.py --samples {args.samples} --duration {args.duration} "
        f"--connections {args.connections}` (in memory, one process; receiver in the "
        f"benchmark's process), {time.strftime('%Y-%m-%d')}:",
        "",
        "| delivery latency, create answered → delivery received | p50 | p90 | p99 | mean |",
        "|---|---|---|---|---|",
        f"| {len(measured)} shares, one at a time | {_quantile(measured, 0.5):.1f} ms "
        f"| {_quantile(measured, 0.9):.1f} ms | {_quantile(measured, 0.99):.1f} ms "
        f"| {statistics.fmean(measured):.1f} ms |",
        "",
        "| create share | req/s | p50 | p99 | non-2xx |",
        "|---|---|---|---|---|",
        f"| no subscription | {off.requests_per_second:,.0f} | {off.p50_ms:.2f} ms "
        f"| {off.p99_ms:.2f} ms | {off.errors} |",
        f"| every share delivered | {on.requests_per_second:,.0f} | {on.p50_ms:.2f} ms "
        f"| {on.p99_ms:.2f} ms | {on.errors} |",
        "",
        f"With deliveries on the mock served "
        f"{on.requests_per_second / off.requests_per_second:.0%} of the rate without; "
        f"the receiver got {delivered:,} deliveries in the run.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
