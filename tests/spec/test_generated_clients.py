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
import re
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


def _models_no_operation_uses(package: Path) -> set[str]:
    """The generated models that no operation returns or takes, directly or inside another."""
    models = {path.stem for path in (package / "models").glob("*.py")} - {"__init__"}
    used: set[str] = set()
    pending = [
        name
        for path in (package / "api").rglob("*.py")
        for name in re.findall(r"from \.\.\.models\.(\w+) import", path.read_text())
    ]
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            text = (package / "models" / f"{name}.py").read_text()
            pending += re.findall(r"from \.\.models\.(\w+) import", text)
    return models - used


def test_the_python_client_has_one_model_per_error_group(client_package: ModuleType) -> None:
    assert client_package.__file__ is not None
    package = Path(client_package.__file__).parent
    models = {path.stem for path in (package / "models").glob("*.py")}
    per_status = sorted(m for m in models if m.rsplit("_", 1)[-1].isdigit())
    assert per_status == []  # no `create_share_response_404` and the like
    group = importlib.import_module("craftkit_client.models.not_found_error")
    code = importlib.import_module("craftkit_client.models.not_found_error_error_code")
    assert [member.value for member in code.NotFoundErrorErrorCode] == ["not_found"]
    # The group's `error` is its own model, whose code has the group's codes only.
    parsed = group.NotFoundError.from_dict({"error": {"code": "not_found", "message": "m"}})
    assert isinstance(parsed.error.code, code.NotFoundErrorErrorCode)
    with pytest.raises(ValueError, match="conflict"):
        group.NotFoundError.from_dict({"error": {"code": "conflict", "message": "m"}})
    # Every model serves an operation, but the webhook payloads (for receivers) and the
    # shared error body the groups narrow (README, "Clients generated from the spec").
    unused = _models_no_operation_uses(package)
    assert {name for name in unused if not name.startswith(("document_webhook_event",
            "render_webhook_event"))} == {"error_body", "error_code"}  # fmt: skip


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
        assert second.error.code == models.NotFoundErrorErrorCode.NOT_FOUND
        request = models.EmailRenderRequest(to="client@example.com", recipient_name="Jane")
        emailed = api("email.email_render").sync(render, client=client, body=request)
        assert isinstance(emailed, models.EmailedShare), emailed
        assert [mail["to"] for mail in sandbox.emails()] == ["client@example.com"]
        pdf = api("downloads.download_render").sync_detailed(render, client=client)
        assert pdf.parsed.payload.read().startswith(b"%PDF-")
        # The generated File carries the bytes only; the name is in the response's header.
        assert pdf.parsed.file_name is None
        assert "filename=" in pdf.headers["content-disposition"]


_USES_THE_TYPES = """
import type { components } from "./openapi-typescript/api";
import type {
  CreateShareError,
  CreateShareErrors,
  CreateShareRequest,
  NotFoundError,
} from "./hey-api/types.gen";

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
// Narrowed by status: the errors map of an operation, indexed by the response's status.
export const at404: CreateShareErrors[404]["error"]["code"] = "not_found";
export const at409: CreateShareErrors[409]["error"]["code"] = "not_ready";
// @ts-expect-error createShare's 404 never carries `not_ready` (its 409 does)
export const misplaced: CreateShareErrors[404]["error"]["code"] = "not_ready";
// @ts-expect-error createShare answers no 418
export type Teapot = CreateShareErrors[418];
export function codeOf(status: number, body: CreateShareError): string {
  if (status === 404) {
    const narrowed = body as CreateShareErrors[404];
    return narrowed.error.code;
  }
  return body.error.code;
}
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
