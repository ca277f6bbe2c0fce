"""Background tasks stopped for certain: cancelled again until each has ended.

A process stops by cancelling its background tasks (the store's keeper, the webhook
dispatcher and its attempts) and waiting for them. One cancellation is not always enough:
redis-py (8.2) sends every command under ``asyncio.wait_for``, which on Python 3.11 drops a
cancellation that arrives as the command's write completes, and the task goes on to its next
call; a worker waiting for it would wait for ever (``craftkit-mock --workers`` hung on one
Ctrl-C in a dozen on a loaded machine). A task is only ever between two calls for a moment,
so cancelling what still runs every ``RECANCEL_SECONDS`` ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

RECANCEL_SECONDS = 0.02
"""How long a cancelled task has to end before it is cancelled again."""


async def stop(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once every one has ended.

    How a task ended is its own to report (the keeper and the dispatcher log their errors,
    an attempt logs its own when done): here an error is only collected, never raised.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # collected: asyncio would otherwise warn it was never retrieved
