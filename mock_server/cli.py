"""``craftkit-mock``: start the reference mock on uvicorn and say how to use it.

Exit codes: 0 after a clean stop, 2 for a bad option, setting or seed file (with a message
that names it).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import resource
from pathlib import Path

import click

from mock_server.edge import RedactTokens, http_protocol
from mock_server.seed import Seed, SeedError, default_seed_path, load_seed
from mock_server.settings import Settings, SettingsError


def banner(seed: Seed, base_url: str) -> list[str]:
    """The lines printed at start: where the mock is, and each seeded project's key and renders."""
    lines = [
        f"Craftkit mock: {base_url}  (control API: {base_url}/_mock; "
        "a sandbox project per test: POST /_mock/projects)"
    ]
    for project in seed.projects:
        renders = ", ".join(f"{r.id} ({r.status})" for r in project.renders) or "none"
        lines.append(f"  project {project.name!r}  key {project.api_key}  renders: {renders}")
    return lines


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _raise_descriptor_limit() -> None:
    """Let the process hold as many sockets as the system allows.

    Idle clients are cut by the header deadline, but a low soft limit would still let a
    burst of them starve the mock of descriptors.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Beyond loopback it needs --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Listen beyond loopback; the control API then requires CRAFTKIT_MOCK_CONTROL_TOKEN.",
)
@click.option(
    "--port",
    default=4010,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one, and the banner names it.",
)
@click.option(
    "--seed",
    "seed_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Seed file (default: the shipped fixtures/seed.yaml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def main(
    host: str,
    port: int,
    allow_remote: bool,
    seed_path: Path | None,
    log_level: str,
    access_log: bool,
) -> None:
    """Start the Craftkit Shares & delivery reference mock.

    Settings come from the environment with the real service's names (SHARE_BASE_URL,
    APP_URL, RESEND_API_KEY, EMAIL_FROM, RESEND_BASE_URL, S3_PUBLIC_URL) and mock-only
    CRAFTKIT_MOCK_* variables; see README.md.
    """
    try:
        settings = Settings.from_env(os.environ)
        seed = load_seed(seed_path or default_seed_path())
    except (SettingsError, SeedError) as exc:
        raise click.UsageError(str(exc)) from exc
    if not is_loopback(host):
        if not allow_remote:
            raise click.UsageError(
                f"--host {host} would hand the control API (reset, clock, faults, and the "
                "outbox with working share links) to anyone who can reach it: pass "
                "--allow-remote and set CRAFTKIT_MOCK_CONTROL_TOKEN"
            )
        if settings.control_token is None:
            raise click.UsageError(
                "--allow-remote needs CRAFTKIT_MOCK_CONTROL_TOKEN: the control API then "
                "answers only requests that send it as X-Craftkit-Control-Token"
            )
        click.echo(f"Listening beyond loopback on {host}: the control API requires its token.")
    _raise_descriptor_limit()
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())

    import uvicorn

    from mock_server.app import create_app

    config = uvicorn.Config(
        create_app(settings, seed),
        host=host,
        port=port,
        http=http_protocol(settings),
        log_level=log_level,
        access_log=access_log,
        proxy_headers=False,  # CRAFTKIT_MOCK_TRUST_FORWARDED_FOR decides, not uvicorn
    )
    # Bind first, so the banner names the port really listened on (--port 0 picks a free one).
    sock = config.bind_socket()
    sock.listen(config.backlog)  # connections made right after the banner wait, not fail
    actual_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    for line in banner(seed, f"http://{shown_host}:{actual_port}"):
        click.echo(line)
    uvicorn.Server(config).run(sockets=[sock])
