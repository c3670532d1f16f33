"""The one way tests wait: for a condition, never for a fixed time.

Timeouts are generous on purpose: CI is a loaded 2-core machine, and a condition that
holds returns at once however long the timeout. A timeout says what was awaited; `what`
may be a function, called then, to say also what was seen instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

Description = str | Callable[[], object]


def _timed_out(timeout: float, what: Description) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


async def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: Description = "condition", interval: float = 0.05) -> Any:
    """Poll `cond` (sync, or async: its result is awaited) until it returns something
    truthy, and return that; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)


def wait_for_blocking(cond: Callable[[], Any], timeout: float = 30.0, what: Description = "condition", interval: float = 0.05,
                      pause: Callable[[float], None] = time.sleep) -> Any:
    """`wait_for` for code without an event loop (threads, the browser tests). `pause` waits
    between polls: a browser test whose condition is set by Playwright's events (a routed
    request or socket) passes `page_pause(page)`, which lets those events in meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        pause(interval)


def page_pause(page: Any) -> Callable[[float], None]:
    """A pause that lets a Playwright page's events reach the test (the sync API dispatches
    them only while it is called): for conditions on the test's side of a page."""
    return lambda s: page.wait_for_timeout(s * 1000)
