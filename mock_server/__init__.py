"""The Craftkit Shares & delivery reference mock: stateful, driven by openapi.yaml.

The folders are its layers, each importing only those below it (import-linter holds them):
``testing`` and ``cli`` (what partners and operators run) over ``app`` (the factory) over
``http`` (Starlette and uvicorn) over ``operations`` (the store, no HTTP) over ``engines``
(where state lives) over ``settings`` and ``seed`` over ``model`` (records and pure rules).

Importing the package is cheap: ``create_app`` and ``Settings`` (and Starlette, pydantic
and jsonschema-rs with them) are loaded on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from mock_server.app import create_app
    from mock_server.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from mock_server.app import create_app

        return create_app
    if name == "Settings":
        from mock_server.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
