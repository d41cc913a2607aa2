"""Query locators: the rows a query matched, kept so ``nextRecordsUrl`` can page through them.

The matching rows and their order are fixed when the query runs; later changes to the org do
not shift pages (field values are read when each page is served). Like a real org, a user has
a limited number of open cursors (opening one more releases the oldest) and an idle cursor
expires (15 minutes of org clock); either way the locator then answers INVALID_QUERY_LOCATOR.

While a client reads one page, the cursor renders the next one on a worker thread, so a client
paging sequentially rarely waits for rendering. A prefetched page is used only if nothing in the
org changed since it was rendered (``Org.revision``) and it is the page asked for.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sf_pipeline.sandbox.clock import OrgClock
from sf_pipeline.sandbox.errors import InvalidQueryLocator
from sf_pipeline.sandbox.ids import KEY_PREFIXES, make_id
from sf_pipeline.sandbox.records_json import Projection

PageKey = tuple[int, int, str, int]  # offset, size, API version, org revision

_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sf-sandbox-prefetch")
        return _workers


@dataclass
class Cursor:
    locator: str
    projection: Projection
    rows: Sequence[int]  # an array of row numbers: 8 bytes a row, no int objects
    batch_size: int
    last_used: datetime
    _ahead: tuple[PageKey, Future[bytes]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prefetch(self, key: PageKey, render: Callable[[], bytes]) -> None:
        with self._lock:
            self._ahead = (key, _executor().submit(render))

    def take(self, key: PageKey) -> bytes | None:
        """The prefetched page for ``key``, if that is what was prefetched and it rendered."""
        with self._lock:
            ahead, self._ahead = self._ahead, None
        if ahead is None or ahead[0] != key:
            return None
        try:
            return ahead[1].result()
        except Exception:
            return None


class Cursors:
    def __init__(self, clock: OrgClock, *, max_open: int = 10, idle: timedelta = timedelta(minutes=15)) -> None:
        self.clock = clock
        self.max_open = max_open
        self.idle = idle
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._counter = 0

    def open(self, projection: Projection, rows: Sequence[int], batch_size: int) -> Cursor:
        with self._lock:
            self._counter += 1
            cursor = Cursor(
                make_id(KEY_PREFIXES["QueryLocator"], self._counter),
                projection,
                array("q", rows),
                batch_size,
                self.clock.now(),
            )
            self._open[cursor.locator] = cursor
            while len(self._open) > max(1, self.max_open):
                self._open.popitem(last=False)
            return cursor

    def get(self, locator: str) -> Cursor:
        with self._lock:
            cursor = self._open.get(locator)
            now = self.clock.now()
            if cursor is None or now - cursor.last_used > self.idle:
                self._open.pop(locator, None)
                raise InvalidQueryLocator("invalid query locator")
            cursor.last_used = max(now, cursor.last_used)
            return cursor

    def count(self) -> int:
        with self._lock:
            return len(self._open)
