"""``craftkit-conformance``: a thin command line over the suite.

Exit codes: 0 the target conforms, 1 a rule failed, 2 the run could not be set up (an
unreachable target, a refused key, a missing or bad option), with a message that says what
to fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import craftkit_spec
from conformance.config import DEFAULT_SEED, PROFILES, RunConfig
from conformance.report import print_report, write_junit, write_report
from conformance.rules import all_rules
from conformance.runner import ConformanceSession, SetupError, select_rules


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Check an implementation of the Craftkit Shares & delivery API against openapi.yaml."""


def _template_data(
    _: click.Context, __: click.Parameter, value: str | None
) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object")
    return data


@main.command()
@click.option(
    "--base-url", required=True, help="The API's base URL (the mock's, or a deployment's)."
)
@click.option("--api-key", help="A project key; required unless the target is the mock.")
@click.option("--other-api-key", help="A second project's key, for the isolation rules.")
@click.option("--render-id", help="A succeeded render of --api-key's project to share.")
@click.option("--template-slug", help="A template to render through the public API.")
@click.option("--template-data", callback=_template_data, help="JSON data for --template-slug.")
@click.option("--not-ready-render-id", help="A render of the key's project that has not succeeded.")
@click.option(
    "--share-base-url", help="Where share links are served, when not where shareUrl says."
)
@click.option("--read-only", is_flag=True, help="Create nothing: only rules that read run.")
@click.option("--max-rps", type=click.FloatRange(min=0.1), help="Requests per second at most.")
@click.option(
    "--profile", type=click.Choice(sorted(PROFILES)), default="default", show_default=True
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Replay a run.")
@click.option("--rule", "only", multiple=True, help="Run only this rule (repeatable).")
@click.option("--exclude-rule", "exclude", multiple=True, help="Leave out this rule (repeatable).")
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
    "--render-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for a render.",
)
def run(
    base_url: str,
    api_key: str | None,
    other_api_key: str | None,
    render_id: str | None,
    template_slug: str | None,
    template_data: dict[str, Any] | None,
    not_ready_render_id: str | None,
    share_base_url: str | None,
    read_only: bool,
    max_rps: float | None,
    profile: str,
    seed: int,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    junit_xml: Path | None,
    report_path: Path | None,
    render_timeout: float,
) -> None:
    """Run the suite against BASE_URL and report per rule."""
    console = Console(stderr=False)
    config = RunConfig(
        base_url=base_url,
        api_key=api_key,
        other_api_key=other_api_key,
        render_id=render_id,
        template_slug=template_slug,
        template_data=template_data,
        not_ready_render_id=not_ready_render_id,
        share_base_url=share_base_url,
        read_only=read_only,
        max_rps=max_rps,
        profile=PROFILES[profile],
        seed=seed,
        render_timeout=render_timeout,
        only=only,
        exclude=exclude,
    )
    try:
        rules = select_rules(only, exclude)
        session = ConformanceSession(config)
    except SetupError as exc:
        console.print(f"[bold red]cannot run:[/] {exc}")
        sys.exit(2)
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
    result = session.finish()
    print_report(result, console)
    if junit_xml:
        write_junit(result, junit_xml)
    if report_path:
        write_report(result, report_path)
    sys.exit(0 if result.passed else 1)


@main.command()
def rules() -> None:
    """List every rule: id, statement, source, and what it needs."""
    table = Table(title="Conformance rules")
    for column in ("id", "statement", "source", "needs"):
        table.add_column(column)
    for rule in all_rules():
        needs = ", ".join(sorted(rule.needs)) or "-"
        if rule.lenient_on_live:
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

    Needs Redoc from the npm registry (`npm ci` in the repository). Serve the folder with
    `python -m http.server --directory OUT` and open index.html.
    """
    from conformance.docs import DocsError, build_site

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
