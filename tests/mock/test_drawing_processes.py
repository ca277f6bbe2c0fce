"""The PDF drawing processes end with the process they draw for, however it ends.

A mock draws PDFs in processes of its own. A benchmark or a test runner often serves mocks
inside a multiprocessing worker, which ends without running atexit hooks and waits for its
children: the drawing processes must not keep it waiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import httpx

from mock_server import create_app
from mock_server.operations import pdf
from mock_server.testing import Sandbox, serve
from tests.support.seed_tables import REPO_ROOT

_IN_A_WORKER = textwrap.dedent(
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import httpx

    from mock_server import create_app
    from mock_server.testing import Sandbox, serve


    def draw(_: int) -> int:
        with serve(create_app()) as base_url, Sandbox.create(base_url) as sandbox:
            url = f"{base_url}/v1/renders/{sandbox.render_id}/download"
            return len(httpx.get(url, headers=sandbox.headers).content)


    if __name__ == "__main__":
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            print(list(pool.map(draw, [0])))
    """
)


def test_a_multiprocessing_worker_that_drew_pdfs_ends() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IN_A_WORKER],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [size] = eval(done.stdout.strip())  # the list the script printed
    assert size > 1000, "a PDF was drawn"


def test_a_drawing_process_that_dies_costs_one_draw_not_every_later_download() -> None:
    """A killed drawing process breaks its pool; the mock draws again in a new one.

    A pool that lost a process (out of memory, killed by an operator) refuses all work: the
    mock would otherwise answer 500 to every later download.
    """
    with serve(create_app()) as base_url, Sandbox.create(base_url) as sandbox:

        def download(render_id: str) -> httpx.Response:
            url = f"{base_url}/v1/renders/{render_id}/download"
            return httpx.get(url, headers=sandbox.headers, timeout=60)

        assert download(sandbox.render_id).status_code == 200  # the pool is up
        pool = pdf._drawers
        assert pool is not None
        for process in list(pool._processes.values()):
            assert process.pid is not None
            with contextlib.suppress(ProcessLookupError):  # one that had exited already
                os.kill(process.pid, signal.SIGKILL)
            process.join(10)
        after = download(sandbox.new_render())
        assert after.status_code == 200, after.text
        assert after.content.startswith(b"%PDF-")
        assert pdf._drawers is not pool
