"""The reference the target is compared with: a mock given by URL, or one started here.

The suite never imports the mock (a deployment's CI may not even have it importable): a
reference started here is ``python -m mock_server --port 0`` in a process of its own, its
URL read from the banner, stopped at the end.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator

from conformance.target import SetupError


@contextlib.contextmanager
def reference_mock(url: str | None) -> Iterator[str]:
    """The reference's base URL: ``url`` itself, or a mock started for the block."""
    if url is not None:
        yield url.rstrip("/")
        return
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise SetupError(f"cannot start a reference mock: {exc}") from exc
    drain: threading.Thread | None = None
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        if not banner.startswith("Craftkit mock:"):
            raise SetupError(
                "cannot start a reference mock (is the mock_server package installed? or pass "
                f"--reference-url): {banner.strip() or 'it printed nothing'}"
            )
        # Whatever it prints later is read and dropped: a full or closed pipe would stop it.
        drain = threading.Thread(target=process.stdout.read, daemon=True)
        drain.start()
        yield banner.split()[2]
    finally:
        process.terminate()
        process.wait(timeout=20)
        if drain is not None:
            drain.join(timeout=5)  # the output ends with the process and its children
        if process.stdout is not None and (drain is None or not drain.is_alive()):
            process.stdout.close()  # (closing it under a reader still reading would block)
