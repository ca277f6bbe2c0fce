"""A mock stops when asked, whatever its background tasks were doing at that moment.

uvicorn ends a worker by cancelling its lifespan's tasks and awaiting them; a task that
swallows the cancellation keeps the worker, and with it ``craftkit-mock --workers`` and the
operator's Ctrl-C, waiting for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from mock_server import create_app
from mock_server.operations import background
from mock_server.settings import Settings


def test_the_webhook_dispatcher_ends_when_cancelled_just_as_it_was_woken() -> None:
    """The wake-up and the cancellation land in the same turn of the event loop.

    That is what a request that records an event, answered just before the worker is told to
    stop, does; on Python 3.11 ``asyncio.wait_for`` returned the wake-up and dropped the
    cancellation (one ``--workers 2`` stop in a dozen, on a loaded machine, hung until
    killed).
    """
    store = create_app(Settings()).state.store

    async def stop_as_woken() -> bool:
        dispatcher = asyncio.create_task(store.webhooks.run())
        await asyncio.sleep(0.05)  # it has looked once and waits for work
        await store.webhooks.clock_moved(None)
        dispatcher.cancel()
        try:
            async with asyncio.timeout(2):
                await dispatcher
        except asyncio.CancelledError:
            return True
        except TimeoutError:
            dispatcher.cancel()
            return False
        finally:
            await store.aclose()
        return False

    assert asyncio.run(stop_as_woken()), "the dispatcher kept running after its cancellation"


def test_a_task_calling_redis_is_stopped_though_redis_py_drops_cancellations(
    redis_url: str,
) -> None:
    """The store's keeper in a tight loop of Redis calls, stopped ten times.

    redis-py sends each command under ``asyncio.wait_for``, which on Python 3.11 drops a
    cancellation landing as the write completes: one cancel and a wait left two of three
    such tasks running.
    """
    settings = Settings(
        store_url=redis_url, token_secret=bytes(range(32)), store_prefix=f"s{uuid.uuid4().hex}"
    )
    store = create_app(settings).state.store

    async def stop_ten_times() -> int:
        ended = 0
        await store.start()
        try:
            for _ in range(10):
                keeper = asyncio.create_task(store.keep_running(every=0))
                await asyncio.sleep(0.01)  # in the middle of its calls to Redis
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2):
                        await background.stop([keeper])
                        ended += 1
                keeper.cancel()  # a test that failed leaves nothing running
        finally:
            await store.aclose()
        return ended

    assert asyncio.run(stop_ten_times()) == 10
