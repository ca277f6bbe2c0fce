"""Real PDFs for renders, drawn with fpdf2: the template's name and the render's data.

The built-in PDF fonts cover Latin-1 only, so other characters are drawn as ``?``; the
document stays a valid PDF whatever the data holds. Output is deterministic for a render
(its creation date is the render's), so repeated downloads are byte-identical.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import concurrent.futures.process
import functools
import json
import multiprocessing
import multiprocessing.util
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from mock_server.model.records import unpack

_MAX_DATA_CHARS = 20_000
_MAX_INDENT = 24
"""Levels of nesting shown by indentation; deeper levels are drawn at this depth."""


def outline(data: object, limit: int = _MAX_DATA_CHARS) -> str:
    """The data as an indented outline (``"key": value``, ``- item``), at most ``limit`` chars.

    Walked with an explicit stack, not recursion: ``data`` may nest as deep as the JSON
    parser allows (1024 levels), past Python's recursion limit.
    """
    lines: list[str] = []
    size = 0
    stack: list[tuple[int, str, object]] = [(-1, "", data)]  # the root itself is not drawn
    while stack and size <= limit:
        depth, label, value = stack.pop()
        pad = "  " * max(0, min(depth, _MAX_INDENT))
        if isinstance(value, dict) and value:
            line = f"{pad}{label}".rstrip()
            children: list[tuple[str, object]] = [
                (f"{json.dumps(key, ensure_ascii=False)}: ", value[key]) for key in sorted(value)
            ]
        elif isinstance(value, list) and value:
            line = f"{pad}{label}".rstrip()
            children = [("- ", item) for item in value]
        else:
            line = f"{pad}{label}{json.dumps(value, ensure_ascii=False)}"
            children = []
        if line.strip():
            lines.append(line)
            size += len(line) + 1
        stack.extend((depth + 1, name, child) for name, child in reversed(children))
    text = "\n".join(lines)
    return text if size <= limit and not stack else text[:limit] + "\n..."


def _latin1(text: str) -> str:
    return text.encode("latin-1", errors="replace").decode("latin-1")


def render_pdf(
    *, render_id: str, template_name: str, version: int, data: object, created_at: datetime
) -> bytes:
    """Draw one render as a one-or-more page PDF and return its bytes."""
    from fpdf import FPDF  # imported on first use: a quarter of a second off the mock's start
    from fpdf.enums import WrapMode

    document = FPDF(format="A4")
    document.set_creation_date(created_at)
    document.set_title(_latin1(f"{template_name} - {render_id}"))
    document.set_author("Craftkit mock")
    document.set_auto_page_break(auto=True, margin=15)
    document.add_page()
    document.set_font("helvetica", style="B", size=18)
    document.cell(0, 12, _latin1(template_name), new_x="LMARGIN", new_y="NEXT")
    document.set_font("helvetica", size=9)
    document.cell(
        0, 6, f"Render {render_id}  -  template version {version}", new_x="LMARGIN", new_y="NEXT"
    )
    document.ln(4)
    document.set_font("courier", size=9)
    document.multi_cell(0, 4.5, _latin1(outline(data)), wrapmode=WrapMode.CHAR)
    return bytes(document.output())


def _render_marshalled(
    *, render_id: str, template_name: str, version: int, data: bytes, created_at: datetime
) -> bytes:
    """``render_pdf`` in a drawing process, on the render's packed data."""
    return render_pdf(
        render_id=render_id,
        template_name=template_name,
        version=version,
        data=unpack(data),
        created_at=created_at,
    )


DRAWS_AT_ONCE = 2
"""PDFs a mock process draws at the same time, each in a process of its own."""

_drawers: concurrent.futures.ProcessPoolExecutor | None = None
"""The drawing processes of this Python process, started on first use and shared by every
mock it serves (tests build many): a process pool is the process's, as a thread pool is."""


_drawers_owner = 0
"""The process that made ``_drawers``: a child forked from it inherits a pool it cannot use."""


def _drawers_for_this_process() -> concurrent.futures.Executor:
    global _drawers, _drawers_owner  # one pool per process, made on first use
    if _drawers is None or _drawers_owner != os.getpid():
        _drawers = concurrent.futures.ProcessPoolExecutor(
            DRAWS_AT_ONCE,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_drawer_started,
            initargs=(os.getpid(),),
        )
        _drawers_owner = os.getpid()
        atexit.register(_drawers.shutdown, cancel_futures=True)  # before modules go
        # A multiprocessing worker (a benchmark's, a test runner's) runs no atexit hooks: it
        # joins its children as it ends, and would wait for these forever. Its finalizers
        # with a priority run first, so the pool is shut down there too, before its queues
        # close (their own finalizers have priority 10).
        multiprocessing.util.Finalize(
            None, _drawers.shutdown, kwargs={"cancel_futures": True}, exitpriority=100
        )
    return _drawers


def _pool_broke(pool: concurrent.futures.Executor) -> None:
    """Forget a pool whose process died (killed, out of memory): the next draw starts anew.

    A ``ProcessPoolExecutor`` that lost a process refuses all further work, so without this
    one dead drawing process would fail every later download of the mock.
    """
    global _drawers
    if pool is _drawers:
        _drawers = None
        pool.shutdown(wait=False, cancel_futures=True)


def _drawer_started(parent: int) -> None:
    """A drawing process: no share of its parent's output, and gone when its parent is.

    It would otherwise hold its parent's stdout open after the parent ended (a reader of
    that output would wait forever), and outlive a parent that was killed.
    """
    quiet = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):
        os.dup2(quiet, stream)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class PdfCache:
    """PDFs drawn once per render and kept while they are among the ``size`` most recent.

    Drawing takes most of a second for large data, so it happens in processes of the cache's
    own (fpdf2 is pure Python: in a thread it would hold the interpreter's lock against the
    event loop while it draws), at most ``DRAWS_AT_ONCE`` at a time, never on the loop:
    other requests (``/health`` among them) keep their latency while PDFs are drawn.
    Repeated downloads of one render (a recipient's page, then its download) are
    byte-identical, so they are served from here, and requests for a PDF being drawn wait
    for that drawing rather than start another.
    """

    def __init__(self, size: int = 64, draws_at_once: int = DRAWS_AT_ONCE) -> None:
        self._size = size
        self._pdfs: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._drawing: dict[str, asyncio.Future[bytes]] = {}
        self._draws_at_once = draws_at_once
        self._draws = asyncio.Semaphore(draws_at_once)
        self.executor: concurrent.futures.Executor | None = None
        """Where PDFs are drawn: this process's drawing processes unless set (tests may put
        threads here)."""

    def _executor(self) -> concurrent.futures.Executor:
        return self.executor or _drawers_for_this_process()

    async def _drawn(self, draw: Callable[[], bytes]) -> bytes:
        """``draw`` run in a drawing process; once more in a new pool if a process died."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            return await loop.run_in_executor(pool, draw)
        except concurrent.futures.process.BrokenProcessPool:
            _pool_broke(pool)
            return await loop.run_in_executor(self._executor(), draw)

    def kept(self) -> list[str]:
        """The renders whose PDFs are kept, least recently used first."""
        return list(self._pdfs)

    async def get(
        self,
        *,
        render_id: str,
        template_name: str,
        version: int,
        packed_data: bytes,
        created_at: datetime,
    ) -> bytes:
        """The render's PDF, drawn (off the event loop) if it is not kept.

        ``packed_data`` is the render's data as the model packs it (marshal), which goes to
        the drawing process as it is: pickle gives up on data as deep as the API accepts.
        """
        kept = self._pdfs.get(render_id)
        if kept is not None:
            self._pdfs.move_to_end(render_id)
            return kept
        pending = self._drawing.get(render_id)
        if pending is not None:
            return await asyncio.shield(pending)
        drawn: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._drawing[render_id] = drawn
        try:
            draw = functools.partial(
                _render_marshalled,
                render_id=render_id,
                template_name=template_name,
                version=version,
                data=packed_data,
                created_at=created_at,
            )
            async with self._draws:
                pdf = await self._drawn(draw)
        except BaseException as exc:
            drawn.set_exception(exc)
            drawn.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._drawing[render_id]
        drawn.set_result(pdf)
        self._pdfs[render_id] = pdf
        if len(self._pdfs) > self._size:
            self._pdfs.popitem(last=False)
        return pdf
