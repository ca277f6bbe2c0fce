"""Requests as such: each project's rate-limit window and the journal of answered requests.

They are about requests, not about the API's resources, so the HTTP middleware uses them and
the store's operations never do; the engine keeps their data, so every mock process on one
Redis shares them. A request made with a project's key (whatever it asks for), or to one of
its share links, belongs to that project: it counts against the project's limit, on the
project's clock, and goes into the project's journal. Other requests are counted per
address against the shared limit and journalled mock-wide.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from mock_server.engines.interface import Engine, JournalEntry, StoreUnavailable


class Traffic:
    """Rate admission and the journal, over the engine that keeps them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def admit(
        self, project_id: str | None, address: str, limit: int, now: datetime
    ) -> int | None:
        """Count a request in its client's minute; the seconds to wait when over ``limit``."""
        return await self._engine.admit(project_id, address, limit, now)

    async def record(self, entry: JournalEntry) -> None:
        """Journal an answered request; while the store is down the answer says so instead."""
        with contextlib.suppress(StoreUnavailable):
            await self._engine.journal_record(entry)

    async def journal(self, project_id: str | None) -> list[JournalEntry]:
        """Answered requests, newest first: a project's, or the whole mock's."""
        return await self._engine.journal(project_id)
