"""``craftkit-mock``: start the reference mock on uvicorn and say how to use it.

Exit codes: 0 after a clean stop, 2 for a bad option, setting or seed file (with a message
that names it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
from collections.abc import Iterator
from pathlib import Path

import click
from starlette.applications import Starlette

from mock_server.http.protocol import RedactSecrets, http_protocol
from mock_server.seed import Seed, SeedError, default_seed_path, load_seed
from mock_server.settings import Settings, SettingsError, is_loopback


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
    envvar="CRAFTKIT_MOCK_HOST",
    show_envvar=True,
    help="Address to listen on. Beyond loopback it needs --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    envvar="CRAFTKIT_MOCK_ALLOW_REMOTE",
    show_envvar=True,
    help="Listen beyond loopback; the control API then requires CRAFTKIT_MOCK_CONTROL_TOKEN.",
)
@click.option(
    "--port",
    default=4010,
    show_default=True,
    envvar="CRAFTKIT_MOCK_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one, and the banner names it.",
)
@click.option(
    "--seed",
    "seed_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="CRAFTKIT_MOCK_SEED_FILE",
    show_envvar=True,
    help="Seed file (default: the shipped fixtures/seed.yaml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    envvar="CRAFTKIT_MOCK_LOG_LEVEL",
    show_envvar=True,
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    envvar="CRAFTKIT_MOCK_ACCESS_LOG",
    show_envvar=True,
)
@click.option(
    "--store",
    "store",
    default=None,
    metavar="memory|redis://HOST:PORT/DB",
    help="Where state lives (default: CRAFTKIT_MOCK_STORE, else memory). With Redis, any "
    "number of mock processes on one Redis act as one mock.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="CRAFTKIT_MOCK_WORKERS",
    show_envvar=True,
    type=click.IntRange(1, 512),
    help="Worker processes serving one port; above 1 needs the Redis store.",
)
def main(
    host: str,
    port: int,
    allow_remote: bool,
    seed_path: Path | None,
    log_level: str,
    access_log: bool,
    store: str | None,
    workers: int,
) -> None:
    """Start the Craftkit Shares & delivery reference mock.

    Settings come from the environment with the real service's names (SHARE_BASE_URL,
    APP_URL, RESEND_API_KEY, EMAIL_FROM, RESEND_BASE_URL, S3_PUBLIC_URL) and mock-only
    CRAFTKIT_MOCK_* variables; see README.md. Each option may be given as its variable
    instead (a container's settings), the option winning over the variable.
    """
    # The options that are also settings; worker processes get them in their environment.
    overrides = {"CRAFTKIT_MOCK_STORE": store} if store is not None else {}
    try:
        settings = Settings.from_env({**os.environ, **overrides})
        seed = load_seed(seed_path or default_seed_path())
    except (SettingsError, SeedError) as exc:
        raise click.UsageError(str(exc)) from exc
    if workers > 1 and settings.store_url is None:
        raise click.UsageError(
            f"--workers {workers} needs the Redis store (--store redis://HOST:PORT/DB): with the "
            "in-memory store each worker would hold its own projects, keys and shares, and a "
            "request would see whichever worker it reached"
        )
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
    if settings.store_url is not None:
        _check_store(settings, seed)
    _raise_descriptor_limit()
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())

    import uvicorn

    from mock_server.app import create_app

    config = uvicorn.Config(
        "mock_server.cli:worker_app" if workers > 1 else create_app(settings, seed),
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        http="mock_server.http.protocol:FROM_ENVIRONMENT"
        if workers > 1
        else http_protocol(settings),
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
    if settings.store_url is not None:
        click.echo(f"  state in {_describe(settings)}, {workers} worker process(es)")
    _tune_garbage_collector()
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        # Each worker loads exactly the seed and settings checked here.
        overrides[WORKER_SEED_VARIABLE] = str(seed_path or default_seed_path())
        # Ctrl-C is how a mock is meant to stop: uvicorn shuts down gracefully, then raises
        # the signal again, which Python turns into KeyboardInterrupt; exit 0, without
        # click's "Aborted!".
        with _environment(overrides), contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock]).run()
    else:
        with contextlib.suppress(KeyboardInterrupt):  # as above
            uvicorn.Server(config).run(sockets=[sock])


def _tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a server whose state is many long-lived records.

    What exists at start (modules, the spec, the seed) is frozen out of every collection,
    and the youngest generation is collected less often; a full collection over a store
    that keeps growing was the slowest request in the benchmarks.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


WORKER_SEED_VARIABLE = "CRAFTKIT_MOCK_SEED"
"""Where a ``--workers`` supervisor tells its workers which seed file it checked."""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for a block (the worker processes started in it).

    Restored after, so nothing leaks into a process that calls ``main`` in-process.
    """
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_app() -> Starlette:
    """The app of one ``--workers`` process: settings and seed from the environment.

    A worker that cannot build its app exits as a failed start (uvicorn's code 3), so the
    supervisor stops instead of replacing it, again and again, with one that fails alike.
    """
    from uvicorn.config import STARTUP_FAILURE

    from mock_server.app import create_app

    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
    seed_path = os.environ.get(WORKER_SEED_VARIABLE)
    try:
        app = create_app(seed=load_seed(Path(seed_path) if seed_path else default_seed_path()))
    except (SettingsError, SeedError) as exc:
        logging.getLogger("uvicorn.error").error("The worker cannot start: %s", exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    _tune_garbage_collector()
    return app


def _describe(settings: Settings) -> str:
    from mock_server.engines.redis import safe_url

    return f"Redis at {safe_url(settings.store_url or '')} (prefix {settings.store_prefix!r})"


def _check_store(settings: Settings, seed: Seed) -> None:
    """Before serving: Redis answers, and every process on it uses the same token secret."""
    from mock_server.app import create_app
    from mock_server.engines.interface import StoreUnavailable
    from mock_server.operations.store import MisconfiguredError

    async def check() -> None:
        store = create_app(settings, seed).state.store
        try:
            await store.ping()
            await store.start()
        finally:
            await store.aclose()

    try:
        asyncio.run(check())
    except StoreUnavailable as exc:
        raise click.UsageError(f"cannot reach {_describe(settings)}: {exc}") from None
    except MisconfiguredError as exc:
        raise click.UsageError(str(exc)) from None
