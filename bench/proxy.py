"""What checking traffic costs: the mock direct, through our proxy, and through Prism's.

The same load against the mock alone, through ``craftkit-conformance proxy``, and through
Prism's validating proxy.

Starts ``python -m mock_server`` (in memory), a project with a render holding 100 shares,
then in front of the same mock ``craftkit-conformance proxy`` and ``prism proxy`` (Stoplight
Prism 5 from ``bench/node_modules``, which checks each exchange against ``openapi.yaml`` on
its own). wrk runs the same two calls against each, one target at a time, on the same two
cores as everything else.

    npm ci --prefix bench
    python bench/proxy.py [--duration 10] [--connections 16] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, SHARE_BODY, Result, _peer, running, write_section, wrk

from mock_server.testing import Sandbox

MARK_BEGIN = "<!-- proxy:begin -->"
MARK_END = "<!-- proxy:end -->"
ROWS = 100


def _list(target: str, base_url: str, box: Sandbox, args: argparse.Namespace) -> Result:
    url = f"{base_url}/v1/renders/{box.render_id}/shares"
    return wrk(target, f"list shares ({ROWS} rows)", url, args, key=box.api_key)


def _create(target: str, base_url: str, box: Sandbox, args: argparse.Namespace) -> Result:
    # On a render of its own: the shares a create run makes would lengthen the list measured.
    url = f"{base_url}/v1/renders/{box.new_render()}/shares"
    return wrk(target, "create share", url, args, SHARE_BODY, key=box.api_key)


def main() -> None:
    """Measure, print, and with ``--write`` keep the report in BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="put the report in BENCHMARKS.md")
    args = parser.parse_args()
    mock = [sys.executable, "-m", "mock_server", "--port", "{port}"]
    results: list[Result] = []
    with running(mock, "/health") as upstream, Sandbox.create(upstream) as box:
        with httpx.Client(base_url=upstream, headers=box.headers) as api:
            for _ in range(ROWS):
                api.post(f"/v1/renders/{box.render_id}/shares", json=SHARE_BODY)
        ours = [sys.executable, "-m", "conformance", "proxy", "--upstream", upstream,
                "--port", "{port}"]  # fmt: skip
        prism = [str(_peer("prism")), "proxy", str(ROOT / "openapi.yaml"), upstream,
                 "-h", "127.0.0.1", "-p", "{port}"]  # fmt: skip
        for measure in (_list, _create):
            results.append(measure("mock, direct", upstream, box, args))
            with running(ours, "/health") as proxied:
                results.append(measure("craftkit-conformance proxy", proxied, box, args))
            with running(prism, "/health") as proxied:
                results.append(measure("Prism proxy", proxied, box, args))
    direct = {r.call: r.requests_per_second for r in results if r.target == "mock, direct"}
    lines = [
        f"`python bench/proxy.py --duration {args.duration} --connections {args.connections}` "
        f"(wrk -t{args.threads} -c{args.connections}, the mock in memory, one process each), "
        f"{time.strftime('%Y-%m-%d')}:",
        "",
        "| target | call | req/s | of direct | p50 | p99 | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r.target} | {r.call} | {r.requests_per_second:,.0f} "
            f"| {r.requests_per_second / direct[r.call]:.0%} | {r.p50_ms:.2f} ms "
            f"| {r.p99_ms:.2f} ms | {r.errors} |"
            for r in results
        ),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
