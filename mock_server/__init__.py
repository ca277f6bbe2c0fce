"""The Craftkit Shares & delivery reference mock: stateful, in memory, driven by openapi.yaml."""

from mock_server.app import create_app
from mock_server.settings import Settings

__all__ = ["Settings", "create_app"]
