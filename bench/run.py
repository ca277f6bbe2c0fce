"""Benchmark the mock side by side with its peers, on loopback, in one run.

Measured with wrk (Debian's ``wrk``) at the same threads, connections and duration for
every target:

- the mock (``python -m mock_server``): create-share, list-shares (100 rows), download;
- Stoplight Prism's mock of the same openapi.yaml (``bench/node_modules``, from
  ``npm ci --prefix bench``), with the list example widened to the same 100 rows: list and
  create;
- the stateful mocks a partner would otherwise pick, from the same ``bench/node_modules``:
  json-server on a ``db.json`` holding the mock's own 100 listed rows, and Mockoon CLI with a
  CRUD route on a data bucket of the same rows: list and create with the same body;
- a bare Starlette endpoint under the same uvicorn settings: the ceiling;

plus the mock's time from process start to its first answered request, and the memory its
store needs for 100,000 shares. Prints a Markdown report; ``--write`` puts it into
BENCHMARKS.md between the report markers.

    python bench/run.py [--duration 10] [--connections 16] [--threads 2] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
KEY = "ck_test_acme_seed_7f3c9d2e4b1a"
AUTH = {"Authorization": f"Bearer {KEY}"}
SEEDED_RENDER = "0193c2c3-5b1e-7a3c-9f2d-4e8b6a1c0d2f"
SHARE_BODY = {
    "channel": "link",
    "message": "Here is your signed agreement.",
    "expiresAt": "2030-12-31T23:59:59Z",
}
MARK_BEGIN = "<!-- bench:begin -->"
MARK_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    target: str
    call: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> float:
    """Poll ``url`` until it answers; return the seconds it took."""
    start = time.perf_counter()
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(url, headers=AUTH).status_code < 500:
                    return time.perf_counter() - start
            time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def running(command: list[str], probe_path: str) -> Iterator[str]:
    """Start a server process on a free port (``{port}`` in the command); yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(base_url + probe_path, process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    target: str,
    call: str,
    url: str,
    args: argparse.Namespace,
    body: Mapping[str, object] | None = None,
    key: str = KEY,
    script: Path | None = None,
) -> Result:
    """Run wrk against one URL.

    A POST with a JSON body when ``body`` is given, or the requests a Lua ``script`` makes.
    """
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {key}",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as body_script:
        if body is not None:
            body_script.write(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
    command += ["-s", str(script or body_script.name), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(body_script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)\s*$", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)\s*$", output, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Result(target, call, rps, p50, p99, int(errors.group(1)) if errors else 0)


def bench_mock(args: argparse.Namespace) -> tuple[list[Result], list[dict[str, object]]]:
    """The mock's create, list (100 rows) and download; and the rows it lists."""
    command = [sys.executable, "-m", "mock_server", "--port", "{port}"]
    with running(command, "/health") as base_url, httpx.Client(base_url=base_url) as client:
        listed = client.post("/_mock/renders", json={"apiKey": KEY}).json()["id"]
        for _ in range(100):
            client.post(f"/v1/renders/{listed}/shares", json=SHARE_BODY, headers=AUTH)
        created = client.post("/_mock/renders", json={"apiKey": KEY}).json()["id"]
        client.get(f"/v1/renders/{SEEDED_RENDER}/download", headers=AUTH)  # draw the PDF once
        rows = client.get(f"/v1/renders/{listed}/shares", headers=AUTH).json()["shares"]
        return [
            wrk("mock", "list shares (100 rows)", f"{base_url}/v1/renders/{listed}/shares", args),
            wrk(
                "mock", "create share", f"{base_url}/v1/renders/{created}/shares", args, SHARE_BODY
            ),
            wrk("mock", "download PDF", f"{base_url}/v1/renders/{SEEDED_RENDER}/download", args),
        ], rows


def _peer(name: str) -> Path:
    tool = BENCH / "node_modules" / ".bin" / name
    if not tool.exists():
        raise SystemExit(f"{tool} is missing: run `npm ci --prefix bench`")
    return tool


def bench_json_server(args: argparse.Namespace, rows: list[dict[str, object]]) -> list[Result]:
    """json-server with the mock's 100 rows as its ``shares`` collection.

    It writes the file on every create, as it does for any partner.
    """
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "db.json"
        database.write_text(json.dumps({"shares": rows}), encoding="utf-8")
        command = [str(_peer("json-server")), str(database), "--host", "127.0.0.1",
                   "--port", "{port}", "--quiet"]  # fmt: skip
        with running(command, "/shares") as base_url:
            url = f"{base_url}/shares"
            return [
                wrk("json-server", "list shares (100 rows)", url, args),
                wrk("json-server", "create share", url, args, SHARE_BODY),
            ]


def mockoon_environment(rows: list[dict[str, object]]) -> dict[str, object]:
    """A Mockoon environment: one CRUD route, ``/shares``, on a data bucket of ``rows``."""
    route, bucket = str(uuid.uuid4()), "shares01"
    response = {
        "uuid": str(uuid.uuid4()), "body": "{}", "latency": 0, "statusCode": 200, "label": "",
        "headers": [], "bodyType": "DATABUCKET", "filePath": "", "databucketID": bucket,
        "sendFileAsBody": False, "rules": [], "rulesOperator": "OR", "disableTemplating": False,
        "fallbackTo404": False, "default": True, "crudKey": "id", "callbacks": [],
    }  # fmt: skip
    return {
        "uuid": str(uuid.uuid4()), "lastMigration": 33, "name": "craftkit-bench",
        "endpointPrefix": "", "latency": 0, "port": 3000, "hostname": "127.0.0.1",
        "folders": [], "rootChildren": [{"type": "route", "uuid": route}],
        "routes": [{
            "uuid": route, "type": "crud", "documentation": "", "method": "",
            "endpoint": "shares", "responses": [response], "responseMode": None,
            "streamingMode": None, "streamingInterval": 0,
        }],
        "proxyMode": False, "proxyHost": "", "proxyRemovePrefix": False,
        "tlsOptions": {"enabled": False, "type": "CERT", "pfxPath": "", "certPath": "",
                       "keyPath": "", "caPath": "", "passphrase": ""},
        "cors": False, "headers": [{"key": "Content-Type", "value": "application/json"}],
        "proxyReqHeaders": [], "proxyResHeaders": [], "callbacks": [],
        "data": [{"uuid": str(uuid.uuid4()), "id": bucket, "name": "shares",
                  "documentation": "", "value": json.dumps(rows)}],
    }  # fmt: skip


def bench_mockoon(args: argparse.Namespace, rows: list[dict[str, object]]) -> list[Result]:
    """Mockoon CLI: a CRUD route on a data bucket holding the mock's 100 rows."""
    with tempfile.TemporaryDirectory() as folder:
        environment = Path(folder) / "environment.json"
        environment.write_text(json.dumps(mockoon_environment(rows)), encoding="utf-8")
        command = [str(_peer("mockoon-cli")), "start", "--data", str(environment),
                   "--port", "{port}", "--disable-log-to-file"]  # fmt: skip
        with running(command, "/shares") as base_url:
            url = f"{base_url}/shares"
            return [
                wrk("Mockoon", "list shares (100 rows)", url, args),
                wrk("Mockoon", "create share", url, args, SHARE_BODY),
            ]


def bench_prism(args: argparse.Namespace) -> list[Result]:
    """Prism's static mock of the same spec, its list example widened to 100 rows."""
    prism = _peer("prism")
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    listing = spec["paths"]["/v1/renders/{id}/shares"]["get"]["responses"]["200"]["content"]
    example = listing["application/json"]["examples"]["one"]["value"]
    example["shares"] = [dict(example["shares"][0]) for _ in range(100)]
    with tempfile.TemporaryDirectory() as folder:
        widened = Path(folder) / "openapi.yaml"
        widened.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        command = [str(prism), "mock", str(widened), "-h", "127.0.0.1", "-p", "{port}"]
        with running(command, f"/v1/renders/{SEEDED_RENDER}/shares") as base_url:
            url = f"{base_url}/v1/renders/{SEEDED_RENDER}/shares"
            return [
                wrk("Prism", "list shares (100 rows)", url, args),
                wrk("Prism", "create share", url, args, SHARE_BODY),
            ]


def bench_bare(args: argparse.Namespace) -> list[Result]:
    """One Starlette JSON endpoint under the mock's uvicorn settings."""
    command = [sys.executable, str(BENCH / "bare_server.py"), "{port}"]
    with running(command, "/ok") as base_url:
        return [wrk("bare Starlette", "GET /ok (ceiling)", f"{base_url}/ok", args)]


def startup_seconds(runs: int = 5) -> list[float]:
    """Seconds from process start to the first answered ``/health``, several times."""
    timings = []
    for _ in range(runs):
        port = free_port()
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(f"http://127.0.0.1:{port}/health", process)
            timings.append(time.perf_counter() - start)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return timings


def memory() -> dict[str, float]:
    """The memory figures of ``bench/memory.py`` for 100,000 shares."""
    output = subprocess.run(
        [sys.executable, str(BENCH / "memory.py"), "100000"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = json.loads(output)
    return figures


def report(
    results: list[Result], startup: list[float], mem: dict[str, float], args: argparse.Namespace
) -> str:
    """The Markdown report."""
    by_key = {(r.target, r.call): r for r in results}
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} with "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
        f"Python {platform.python_version()}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s --latency on loopback, each target alone.",
        "",
        "| target | call | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.call} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    lines += ["", "| comparison | ratio | target |", "|---|---:|---|"]
    targets = {
        "list shares (100 rows)": (("Prism", "json-server", "Mockoon"), "best peer", 3),
        "create share": (("json-server", "Mockoon"), "best stateful peer", 5),
    }
    for call, (peers, label, wanted) in targets.items():
        mock = by_key.get(("mock", call))
        measured = [by_key[(peer, call)] for peer in peers if (peer, call) in by_key]
        if mock and measured:
            best = max(measured, key=lambda r: r.requests_per_second)
            ratio = mock.requests_per_second / best.requests_per_second
            lines.append(
                f"| mock / {label} ({best.target}), {call} | {ratio:.2f}x | at least {wanted}x |"
            )
    mock_p99 = max((r.p99_ms for r in results if r.target == "mock"), default=0.0)
    lines.append(f"| mock's worst p99 | {mock_p99:.2f} ms | under 10 ms |")
    lines += [
        "",
        f"Start to first answered request: median {statistics.median(startup) * 1000:.0f} ms, "
        f"max {max(startup) * 1000:.0f} ms over {len(startup)} starts (target: under 500 ms).",
        "",
        f"Memory with {int(mem['shares']):,} shares: {mem['rss_mib']:.0f} MiB resident in all, "
        f"{mem['growth_mib']:.0f} MiB of it for the shares (target: under 300 MB).",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run every measurement and print (or write) the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    mock_results, rows = bench_mock(args)
    results = (
        mock_results
        + bench_prism(args)
        + bench_json_server(args, rows)
        + bench_mockoon(args, rows)
        + bench_bare(args)
    )
    text = report(results, startup_seconds(), memory(), args)
    print(text)
    if args.write:
        write_section(MARK_BEGIN, MARK_END, text)


def write_section(begin_mark: str, end_mark: str, text: str) -> None:
    """Put ``text`` into BENCHMARKS.md between two marker comments."""
    target = ROOT / "BENCHMARKS.md"
    current = target.read_text(encoding="utf-8")
    begin, end = current.index(begin_mark) + len(begin_mark), current.index(end_mark)
    target.write_text(current[:begin] + "\n" + text + "\n" + current[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
