"""How much memory the mock's store needs for N shares (default 100,000).

Shares are created through the store's own ``create_share`` on the in-memory engine, the
code path the API uses minus HTTP, spread over renders of 100 shares each; the figure is the
process's resident set size after the shares exist, and its growth over the empty mock.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mock_server import create_app
from mock_server.model.timestamps import parse_timestamp


def rss_mib() -> float:
    """The resident set size of this process, in MiB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def main(count: int) -> None:
    """Create ``count`` shares and print the RSS figures as JSON."""
    app = create_app()
    store = app.state.store
    await store.start()
    project = await store.project_of_key("ck_test_acme_seed_7f3c9d2e4b1a")
    gc.collect()
    before = rss_mib()
    expiry = parse_timestamp("2030-12-31T23:59:59Z")
    render_id = ""
    for index in range(count):
        if index % 100 == 0:
            render, _ = await store.control_create_render(
                project, status="succeeded", slug="invoice", data={"n": index}
            )
            render_id = render.id
        await store.create_share(
            project,
            render_id,
            channel="link",
            recipient_email=None,
            message="Here is your signed agreement.",
            expires_at=expiry,
            origin="http://127.0.0.1:4010",
        )
    gc.collect()
    after = rss_mib()
    print(
        json.dumps(
            {"shares": count, "rss_mib": round(after, 1), "growth_mib": round(after - before, 1)}
        )
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
