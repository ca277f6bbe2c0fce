"""How the mock scales out on Redis: create, list and revoke per number of worker processes.

For each worker count it starts ``craftkit-mock --workers N --store redis://…`` on a real
``redis-server`` (started here, on loopback, with nothing on disk) and measures with wrk:

- create share (``POST /v1/renders/{id}/shares``),
- list shares (100 rows),
- revoke share (``DELETE``, every request a different one of the shares create made; once
  they run out the rest answer 404, counted as non-2xx),

beside the in-memory store in a single process, the default. Each target runs alone, with
the same wrk settings. On a machine with few cores, wrk and Redis take cores from the
workers; the figure that matters is taken on a machine with more cores than workers.

    python bench/scale.py [--workers 1,2,4,8] [--duration 10] [--connections 64] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import SHARE_BODY, Result, write_section, wrk

from mock_server.testing import MockProcess, RedisServer

MARK_BEGIN = "<!-- scale:begin -->"
MARK_END = "<!-- scale:end -->"


def _revoke_script(render_id: str, share_ids: list[str], threads: int) -> str:
    """A wrk script whose threads take turns through the shares: no share revoked twice."""
    ids = ",".join(f'"{share_id}"' for share_id in share_ids)
    return f"""
local ids = {{{ids}}}
local counter = 1
local threads = {threads}
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  next_index = offset
end
function request()
  local id = ids[next_index]
  next_index = next_index + threads
  if id == nil then id = "none" end
  return wrk.format("DELETE", "/v1/renders/{render_id}/shares/" .. id)
end
"""


def measure(label: str, base: str, args: argparse.Namespace) -> list[Result]:
    """Create, list and revoke against one running mock (revoking what create made)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        project = client.post("/_mock/projects", json={"name": label}).json()
        headers = {"Authorization": f"Bearer {project['apiKey']}"}
        renders = f"/_mock/projects/{project['projectId']}/renders"
        listed, created = (client.post(renders).json()["id"] for _ in range(2))
        for _ in range(100):
            client.post(f"/v1/renders/{listed}/shares", headers=headers, json=SHARE_BODY)
        key = project["apiKey"]
        create_url = f"{base}/v1/renders/{created}/shares"
        results = [
            wrk(label, "create share", create_url, args, SHARE_BODY, key),
            wrk(label, "list shares (100 rows)", f"{base}/v1/renders/{listed}/shares", args,
                None, key),
        ]  # fmt: skip
        made = client.get(create_url, headers=headers).json()["shares"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_revoke_script(created, [row["id"] for row in made], args.threads))
    try:
        results.append(wrk(label, "revoke share", base, args, None, key, script=Path(script.name)))
    finally:
        Path(script.name).unlink()
    return results


def report(results: list[Result], args: argparse.Namespace) -> str:
    """The Markdown table."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} with {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, redis-server "
        f"{_redis_version()}; wrk -t{args.threads} -c{args.connections} -d{args.duration}s on "
        "loopback, each target alone. wrk, Redis and the workers share these cores.",
        "",
        "| store, processes | call | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.call} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    rate = {(r.target, r.call): r.requests_per_second for r in results}
    shares = [
        f"{call} {rate[('Redis, 1', call)] / rate[('memory, 1', call)]:.0%}"
        for call in ("create share", "list shares (100 rows)")
        if ("Redis, 1", call) in rate
    ]
    if shares:
        lines += [
            "",
            f"One Redis worker against the in-memory process, same run: {', '.join(shares)}.",
        ]
    return "\n".join(lines)


def _redis_version() -> str:
    output = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return next((part[2:] for part in output.split() if part.startswith("v=")), "?")


def main() -> None:
    """Measure the in-memory single process, then Redis with each worker count."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, comma-separated")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    secret = {"CRAFTKIT_MOCK_TOKEN_SECRET": secrets.token_hex(32)}
    with MockProcess(env=secret) as base:
        results = measure("memory, 1", base, args)
    with RedisServer() as redis_server:
        for count in (int(part) for part in args.workers.split(",")):
            env = {**secret, "CRAFTKIT_MOCK_STORE_PREFIX": f"scale{uuid.uuid4().hex[:6]}"}
            store = ("--store", redis_server.url, "--workers", str(count))
            with MockProcess(*store, env=env) as base:
                results += measure(f"Redis, {count}", base, args)
    text = report(results, args)
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
