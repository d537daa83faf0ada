"""The status page in a real browser: Debian's headless Chromium, driven over CDP.

No Playwright download: Chromium is started with `--remote-debugging-port=0`,
writes the port it chose to `DevToolsActivePort` in its profile folder, and a
small DevTools-protocol client over aiohttp's websocket opens the page and
evaluates JavaScript in it. The test sees entries appended *after* the page
loaded arrive over server-sent events, then cuts the event stream and checks
that entries appended while the browser was away arrive after its reconnect,
which it makes with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from eventlog.ledger.entries import CompanyCompleted, WorkerStarted
from eventlog.ops.server import HealthServer
from support.obs import FakeView, add_batch, add_request, live_stats

CHROMIUM = shutil.which("chromium")


def append(ledger, n: int = 1) -> None:
    for _ in range(n):
        ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))


class DevTools:
    """Just enough of the Chrome DevTools Protocol: send a command, await its answer."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())
        self.session_id: str | None = None

    async def _read(self) -> None:
        async for msg in self.ws:
            data = msg.json()
            fut = self.pending.pop(data.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(data)

    async def send(self, method: str, session: bool = True, **params: Any) -> dict:
        msg_id = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session and self.session_id:
            message["sessionId"] = self.session_id
        await self.ws.send_json(message)
        async with asyncio.timeout(10):
            answer = await fut
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def open(self, url: str) -> None:
        target = await self.send("Target.createTarget", session=False, url=url)
        attached = await self.send("Target.attachToTarget", session=False,
                                   targetId=target["targetId"], flatten=True)
        self.session_id = attached["sessionId"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll `expression` in the page until it is truthy; its value on success."""
        async with asyncio.timeout(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
        f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(20):
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws:
                tools = DevTools(ws)
                try:
                    yield tools
                finally:
                    tools.reader.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


ROWS = "[...document.querySelectorAll('#entries tr')].map(r => Number(r.dataset.position))"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
async def test_page_updates_live_and_misses_nothing_across_a_reconnect(conn, clock, ledger, tmp_path):
    append(ledger, 3)
    view = FakeView(conn, clock, streams=[live_stats("companies", clock.now(), events=3)])
    async with HealthServer(view, poll_interval=0.05, snapshot_interval=0.3, retry_ms=100) as srv:
        async with chromium(tmp_path / "profile") as browser:
            await browser.open(srv.url + "/")
            await browser.wait_for("document.getElementById('feed-state').textContent === 'live'")
            assert await browser.wait_for(f"{ROWS}.length === 3 && {ROWS}") == [3, 2, 1]
            assert "companies: connected" in await browser.evaluate(
                "document.getElementById('streams').textContent")

            # an entry appended after the page loaded arrives over SSE
            ledger.append(CompanyCompleted(company_number="01234567", reason="not of interest"))
            row = await browser.wait_for(
                "document.querySelector('#entries tr[data-position=\"4\"]')?.textContent")
            assert "company.completed" in row and "01234567" in row and "not of interest" in row

            # and so does a status snapshot: the window count moves
            add_request(conn, clock.now() - 1, 200)
            assert await browser.wait_for(
                "document.getElementById('window').textContent.startsWith('1 / 600') && "
                "document.getElementById('window').textContent")
            assert await browser.evaluate("document.getElementById('batches').textContent") == "no batches"
            add_batch(conn, "b" * 32, "bulk snapshot 2023-11-01", total=3, completed=1)
            assert await browser.wait_for(
                "document.getElementById('batches').textContent === "
                "'bulk snapshot 2023-11-01: processing, 1 / 3 jobs'")

            # cut the stream; what is appended while the browser is away still arrives
            assert list(srv.feed.resumed_from) == [], "the browser reconnected on its own"
            assert srv.feed.drop_clients() == 1
            append(ledger, 2)
            assert await browser.wait_for(f"{ROWS}.length === 6 && {ROWS}") == [6, 5, 4, 3, 2, 1]
            resumed = list(srv.feed.resumed_from)
            assert resumed == [4], f"resumed from {resumed}"  # the browser's own Last-Event-ID
            assert await browser.wait_for(
                "document.getElementById('feed-state').textContent === 'live'")


async def test_page_is_self_contained(conn, clock, ledger):
    """No external assets: every script and style is inline, nothing is fetched from elsewhere."""
    append(ledger, 1)
    view = FakeView(conn, clock, streams=[live_stats("companies", clock.now())])
    async with HealthServer(view) as srv:
        async with aiohttp.ClientSession() as s, s.get(srv.url + "/") as r:
            assert r.status == 200 and r.content_type == "text/html"
            html = await r.text()
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", html)
    assert 'new EventSource("events")' in html
    initial = re.search(r'<script id="initial" type="application/json">(.*?)</script>', html, re.S)
    assert initial and '"window_limit":600' in initial.group(1)
