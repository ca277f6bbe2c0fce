"""The Craftkit Shares & delivery reference mock: stateful, driven by openapi.yaml.

Importing the package is cheap: ``create_app`` (and Starlette, pydantic and jsonschema-rs
with it) is loaded on first use, so ``import mock_server.domain`` loads only the domain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from mock_server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
