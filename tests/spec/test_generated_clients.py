"""Clients generated from openapi.yaml work: Python driven against the mock, TypeScript checked.

Partners generate their SDKs from the spec, so the spec's shapes are tested the way they use
them: openapi-python-client (its client drives a real mock: a share with a ``datetime``
expiry, the list, a revoke twice, an email, the PDF), and openapi-typescript and
@hey-api/openapi-ts (their types compiled by ``tsc --strict`` against a file that uses them).
Generation must be free of warnings.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import craftkit_spec
from mock_server import Settings, create_app
from mock_server.testing import Sandbox, serve

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
SPEC = str(craftkit_spec.spec_path())
VENV_BIN = Path(sys.executable).parent


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The Python client openapi-python-client generates, imported."""
    folder = tmp_path_factory.mktemp("python-sdk")
    output = _run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", SPEC,
         "--output-path", str(folder / "craftkit_client"), "--meta", "none",
         "--config", str(ROOT / "clients" / "openapi-python-client.yaml")],
        folder,
    )  # fmt: skip
    assert "warning" not in output.lower(), output
    assert "skipping" not in output.lower(), output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("craftkit_client")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] == "craftkit_client"]:
            del sys.modules[name]


def test_the_python_client_has_one_model_per_error_group(client_package: ModuleType) -> None:
    assert client_package.__file__ is not None
    folder = Path(client_package.__file__).parent / "models"
    models = {path.stem for path in folder.glob("*.py")}
    per_status = sorted(m for m in models if m.rsplit("_", 1)[-1].isdigit())
    assert per_status == []  # no `create_share_response_404` and the like
    code = importlib.import_module("craftkit_client.models.not_found_error_error_code")
    assert [member.value for member in code.NotFoundErrorErrorCode] == ["not_found"]


def test_the_generated_python_client_drives_the_mock(client_package: ModuleType) -> None:
    def api(module: str) -> Any:
        return importlib.import_module(f"craftkit_client.api.{module}")

    models = importlib.import_module("craftkit_client.models")
    authenticated = client_package.AuthenticatedClient
    with (
        serve(create_app(Settings())) as base_url,
        Sandbox.create(base_url) as sandbox,
        authenticated(base_url=base_url, token=sandbox.api_key) as client,
    ):
        render = sandbox.render_id
        expiry = datetime(2030, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        body = models.CreateShareRequest(message="Here you go", expires_at=expiry)
        created = api("shares.create_share").sync(render, client=client, body=body)
        assert isinstance(created, models.CreatedShare), created
        assert created.expires_at == expiry
        assert created.expires_at.tzinfo == UTC or created.expires_at.utcoffset() == timedelta(0)
        listed = api("shares.list_shares").sync(render, client=client)
        assert [share.id for share in listed.shares] == [created.id]
        revoke = api("shares.revoke_share")
        first = revoke.sync(render, created.id, client=client)
        assert isinstance(first, models.RevokedShare)
        second = revoke.sync(render, created.id, client=client)
        assert isinstance(second, models.NotFoundError)
        assert second.error.code.value == "not_found"
        request = models.EmailRenderRequest(to="client@example.com", recipient_name="Jane")
        emailed = api("email.email_render").sync(render, client=client, body=request)
        assert isinstance(emailed, models.EmailedShare), emailed
        assert [mail["to"] for mail in sandbox.emails()] == ["client@example.com"]
        pdf = api("downloads.download_render").sync(render, client=client)
        assert pdf.payload.read().startswith(b"%PDF-")


_USES_THE_TYPES = """
import type { components } from "./openapi-typescript/api";
import type { CreateShareRequest, NotFoundError } from "./hey-api/types.gen";

type CreateShare = components["schemas"]["CreateShareRequest"];
type NotFoundCode = components["schemas"]["NotFoundError"]["error"]["code"];

// Every field of a share request is optional.
export const empty: CreateShare = {};
export const withMessage: CreateShare = { message: "Here you go" };
export const heyEmpty: CreateShareRequest = {};
// An error response keeps the codes its status may carry, and only those.
export const notFound: NotFoundCode = "not_found";
export const heyNotFound: NotFoundError["error"]["code"] = "not_found";
// @ts-expect-error a 404 of this group never carries `conflict`
export const wrong: NotFoundCode = "conflict";
"""


def test_the_typescript_clients_type_check(tmp_path: Path) -> None:
    typed = _run(
        [str(NODE_BIN / "openapi-typescript"), SPEC, "-o",
         str(tmp_path / "openapi-typescript" / "api.d.ts")],
        tmp_path,
    )  # fmt: skip
    assert "warn" not in typed.lower(), typed
    hey = _run(
        [str(NODE_BIN / "openapi-ts"), "-i", SPEC, "-o", str(tmp_path / "hey-api"),
         "--no-log-file"],
        tmp_path,
    )  # fmt: skip
    assert "warn" not in hey.lower(), hey
    (tmp_path / "uses.ts").write_text(_USES_THE_TYPES, encoding="utf-8")
    _run(
        [str(NODE_BIN / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module",
         "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom,dom.iterable",
         "uses.ts", "hey-api/index.ts"],
        tmp_path,
    )  # fmt: skip
