"""Which host names are this machine: the one test the mock applies wherever loopback matters.

The control API answers loopback callers without a token, and webhooks go only to loopback
receivers unless the operator allows more; both ask here.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
