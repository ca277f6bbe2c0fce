"""``craftkit-conformance``: a thin command line over the suite.

Exit codes: 0 the target conforms, 1 a rule failed, 2 the run could not be set up (an
unreachable target, a refused key, a missing or bad option), with a message that says what
to fix.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from hypothesis.configuration import set_hypothesis_home_dir
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import craftkit_spec
from conformance import options
from conformance.config import RunConfig
from conformance.passive.checker import PassiveChecker
from conformance.passive.proxy import CheckingProxy
from conformance.passive.traffic import TrafficError, read_traffic
from conformance.report import print_report, write_junit, write_report
from conformance.rules import Rule, all_rules
from conformance.runner import ConformanceSession, RunResult, SetupError, select_rules


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Check an implementation of the Craftkit Shares & delivery API against openapi.yaml."""
    _keep_hypothesis_out_of_the_current_folder()


def _keep_hypothesis_out_of_the_current_folder() -> None:
    """Hypothesis keeps its caches in ``./.hypothesis``: an implementer's checkout, here.

    The command runs against servers, not code under test, so nothing in those caches is
    worth keeping: they go to a temporary folder, removed at exit, unless
    ``HYPOTHESIS_STORAGE_DIRECTORY`` names one.
    """
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    folder = tempfile.mkdtemp(prefix="craftkit-conformance-hypothesis-")
    set_hypothesis_home_dir(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


@main.command()
@options.click_options
@click.option(
    "--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a .json or .md report.",
)
def run(junit_xml: Path | None, report_path: Path | None, **values: Any) -> None:
    """Run the suite against BASE_URL and report per rule.

    Ctrl-C stops the run; the target is cleaned up all the same (shares revoked, the mock's
    projects deleted) and the rules run so far are reported (exit code 130).
    """
    console = Console(stderr=False)
    try:
        config = options.run_config(values)
    except options.OptionError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        rules = select_rules(config.only, config.exclude)
        session = ConformanceSession(config)
    except SetupError as exc:
        console.print(f"[bold red]cannot run:[/] {exc}")
        sys.exit(2)
    interrupted = False
    with session:
        try:
            _run_rules(session, rules, console)
        except KeyboardInterrupt:
            interrupted = True
    result = session.finish()
    print_report(result, console)
    if junit_xml:
        write_junit(result, junit_xml)
    if report_path:
        write_report(result, report_path)
    if interrupted:
        console.print(f"[bold red]interrupted[/] after {len(result.results)} of {len(rules)} rules")
        sys.exit(130)
    sys.exit(0 if result.passed else 1)


def _run_rules(session: ConformanceSession, rules: list[Rule], console: Console) -> None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(rules))
        for rule in rules:
            progress.update(task, description=rule.id)
            session.run_rule(rule)
            progress.advance(task)


@main.command()
@options.click_options
@click.option("--reference-url", help=options.REFERENCE_URL_HELP)
@click.option(
    "--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a .json or .md report.",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Stop at the first departure (by default every departure is reported, each once).",
)
def diff(
    reference_url: str | None,
    junit_xml: Path | None,
    report_path: Path | None,
    fail_fast: bool,
    **values: Any,
) -> None:
    """Run the same sequences against BASE_URL and the reference mock; show where they differ.

    Exit codes: 0 nothing differs beyond Part B decisions, 1 the target departs from the
    contract, 2 the run could not be set up.
    """
    from conformance.differential.machine import run_lockstep
    from conformance.differential.reference import reference_mock
    from conformance.differential.report import print_report as print_diff
    from conformance.differential.report import write_junit as write_diff_junit
    from conformance.differential.report import write_report as write_diff_report

    console = Console(stderr=False)
    try:
        config = options.run_config(values)
    except options.OptionError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        with reference_mock(reference_url) as reference:
            reference_config = RunConfig(
                base_url=reference, profile=config.profile, seed=config.seed
            )
            result = run_lockstep(config, reference_config, fail_fast=fail_fast)
    except SetupError as exc:
        console.print(f"[bold red]cannot run:[/] {exc}")
        sys.exit(2)
    print_diff(result, console)
    if junit_xml:
        write_diff_junit(result, junit_xml)
    if report_path:
        write_diff_report(result, report_path)
    sys.exit(0 if result.passed else 1)


@main.command()
def rules() -> None:
    """List every rule: id, statement, source, and what it needs."""
    table = Table(title="Conformance rules")
    widest = max(len(rule.id) for rule in all_rules())
    table.add_column("id", no_wrap=True, min_width=widest)  # whole, however narrow the log
    for column in ("statement", "source", "needs"):
        table.add_column(column, overflow="fold")
    for rule in all_rules():
        needs = ", ".join(sorted(rule.needs)) or "-"
        if rule.only_decisions:
            needs += " (reported, not failed, on a deployment)"
        table.add_row(rule.id, rule.statement, rule.source, needs)
    Console().print(table)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the site into.",
)
def docs(out: Path) -> None:
    """Build the reference docs (HTML and Markdown) from the specs into OUT.

    Needs Redoc's bundle: from a checkout's node_modules (`npm ci`), from
    CRAFTKIT_REDOC_BUNDLE, or fetched once with npm into ~/.cache/craftkit. Serve the folder
    with `python -m http.server --bind 127.0.0.1 --directory OUT` and open index.html.
    """
    from craftkit_docs.site import DocsError, build_site

    try:
        written = build_site(out)
    except DocsError as exc:
        click.echo(f"cannot build the docs: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {len(written)} files; open {out / 'index.html'}")


@main.command()
def codes() -> None:
    """List every operation's error statuses and the codes each may carry.

    Read from openapi.yaml: the table an implementer checks their error handling against.
    """
    spec = craftkit_spec.load_resolved()
    table = Table(title="Error codes by operation (openapi.yaml)")
    for column in ("operation", "method", "path", "status", "codes"):
        table.add_column(column)
    error_table = craftkit_spec.error_table(spec)
    for operation in craftkit_spec.iter_operations(spec):
        for status in sorted(s for (op, s) in error_table if op == operation.operation_id):
            table.add_row(
                operation.operation_id,
                operation.method.upper(),
                operation.path,
                str(status),
                ", ".join(sorted(error_table[(operation.operation_id, status)])),
            )
    Console().print(table)


# ---- passive: traffic the suite did not send ------------------------------------------

_report_options = [
    click.option(
        "--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML."
    ),
    click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write a .json or .md report.",
    ),
    click.option(
        "--fail-on",
        type=click.Choice(["failed", "deviated", "never"]),
        default="failed",
        show_default=True,
        help="What makes the exit code 1: a broken fact, also a decision taken otherwise, "
        "or nothing.",
    ),
]


def _with_report_options(function: Any) -> Any:
    for option in reversed(_report_options):
        function = option(function)
    return function


def _passive_report(
    result: RunResult, junit_xml: Path | None, report_path: Path | None, console: Console
) -> None:
    print_report(result, console)
    if junit_xml:
        write_junit(result, junit_xml)
    if report_path:
        write_report(result, report_path)


def _passive_exit(result: RunResult, fail_on: str) -> int:
    failing = {"failed": ("failed", "error"), "deviated": ("failed", "error", "deviated")}
    counted = failing.get(fail_on, ())
    return 1 if any(r.outcome in counted for r in result.results) else 0


@main.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_with_report_options
def check(
    files: tuple[Path, ...], junit_xml: Path | None, report_path: Path | None, fail_on: str
) -> None:
    """Check recorded traffic (HAR, or NDJSON of exchanges) against the contract.

    Each exchange is checked against openapi.yaml, and the catalogue's rules are decided
    where the traffic shows enough (a revoke after a revoke, a link opened after its share
    was revoked, a list after a create). Files are read in the order given, as one history.
    Exit code 1 when a finding counts (--fail-on), 2 when a file is not traffic.
    """
    console = Console()
    started = time.perf_counter()
    checker = PassiveChecker(source=", ".join(str(f) for f in files))
    for path in files:
        try:
            checker.feed_all(read_traffic(path))
        except TrafficError as exc:
            console.print(f"[bold red]cannot check {escape(str(path))}:[/] {escape(str(exc))}")
            sys.exit(2)
    result = checker.result(time.perf_counter() - started)
    _passive_report(result, junit_xml, report_path, console)
    sys.exit(_passive_exit(result, fail_on))


@main.command()
@click.option("--upstream", required=True, help="The API to forward to (a deployment, the mock).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to listen.")
@click.option("--port", type=int, default=8088, show_default=True, help="The port to listen on.")
@click.option(
    "--keep-host",
    is_flag=True,
    help="Send the client's Host upstream as it came (the links the API mints then point "
    "back through the proxy; for the mock), instead of the upstream's own name.",
)
@_with_report_options
def proxy(
    upstream: str,
    host: str,
    port: int,
    keep_host: bool,
    junit_xml: Path | None,
    report_path: Path | None,
    fail_on: str,
) -> None:
    """Forward traffic to UPSTREAM unchanged and check every exchange as it passes.

    Point a client at http://HOST:PORT instead of the API. Bodies are kept up to 4 MiB, only
    until checked; nothing is logged. SIGUSR1 writes the reports as they stand; Ctrl-C or
    SIGTERM writes them and exits (1 when a finding counts, --fail-on).
    """
    import uvicorn  # only the proxy serves

    console = Console()
    started = time.perf_counter()
    checker = PassiveChecker(source=f"traffic through the proxy to {upstream}")

    def report_now() -> None:
        result = checker.result(time.perf_counter() - started)
        if junit_xml:
            write_junit(result, junit_xml)
        if report_path:
            write_report(result, report_path)

    async def on_start() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report_now)

    app = CheckingProxy(upstream, checker, on_start, keep_host=keep_host)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")
    )
    # uvicorn raises the signal that stopped it again once it has: these make that a no-op,
    # so the reports are written and the exit code is the traffic's.
    stops: list[int] = []
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda number, _frame: stops.append(number))
    console.print(f"proxying http://{host}:{port} -> {upstream} (Ctrl-C to stop and report)")
    server.run()
    if not server.started:
        console.print(f"[bold red]cannot listen on {host}:{port}[/]")
        sys.exit(2)
    result = checker.result(time.perf_counter() - started)
    _passive_report(result, junit_xml, report_path, console)
    sys.exit(_passive_exit(result, fail_on))
