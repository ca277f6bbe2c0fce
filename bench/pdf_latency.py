"""/health's latency while PDFs are drawn: idle, and during first downloads of big renders.

    python bench/pdf_latency.py [--renders 6] [--probes 200]

A mock in a process of its own (``python -m mock_server --port 0``); a project with
``--renders`` renders whose data draw a long PDF; one client downloads each once (nothing
is cached) while another times ``GET /health`` back to back. Prints the p50 and max of
/health idle and during the downloads, as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx

from mock_server.testing import MockProcess, Sandbox

BIG_DATA = {"rows": [{"item": f"line {n}", "note": "x" * 60} for n in range(400)]}


def _probe(url: str, count: int, stop: threading.Event | None = None) -> list[float]:
    """Seconds per ``GET /health``, ``count`` of them (or until ``stop``)."""
    seconds: list[float] = []
    with httpx.Client(timeout=30) as client:
        while len(seconds) < count and not (stop is not None and stop.is_set()):
            started = time.perf_counter()
            client.get(f"{url}/health").raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    """Measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=6)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    with MockProcess() as url, Sandbox.create(url) as sandbox:
        renders = [sandbox.new_render(data=BIG_DATA) for _ in range(args.renders)]
        idle = _probe(url, args.probes)
        done = threading.Event()

        def download_all() -> None:
            with httpx.Client(timeout=120) as client:
                for render in renders:
                    answer = client.get(
                        f"{url}/v1/renders/{render}/download", headers=sandbox.headers
                    )
                    answer.raise_for_status()
            done.set()

        downloader = threading.Thread(target=download_all)
        started = time.perf_counter()
        downloader.start()
        busy = _probe(url, 10**9, stop=done)
        downloader.join()
        took = time.perf_counter() - started
    print(
        f"{args.renders} first downloads of {len(BIG_DATA['rows'])}-row renders took {took:.1f} s"
    )
    print("| /health | p50 (ms) | p90 (ms) | max (ms) | answered per second |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in (("idle", idle), ("during the downloads", busy)):
        p90 = statistics.quantiles(seconds, n=10)[-1]
        print(
            f"| {name} | {statistics.median(seconds) * 1000:.1f} | {p90 * 1000:.1f} "
            f"| {max(seconds) * 1000:.1f} | {len(seconds) / sum(seconds):.0f} |"
        )


if __name__ == "__main__":
    main()
