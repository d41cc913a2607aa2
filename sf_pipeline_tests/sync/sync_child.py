"""A sync in its own process, so a test can SIGKILL it: ``python -m sf_pipeline_tests.sync.sync_child NAME``
with SF_PIPELINE_HOME, SF_PIPELINE_DATABASE_URL, REQUESTS_CA_BUNDLE and SF_PIPELINE_SECRET_KEY set.

``PAGE_SIZE`` and ``ROWS_PER_CHUNK`` size pages and chunks. With ``HOLD_AT_WRITE=N`` and
``HOLD_MARKER=PATH``, the Nth statement that writes ``users`` runs, then its thread creates PATH
and waits forever inside the still open transaction: a kill then lands truly mid-write."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

from sf_pipeline.salesforce.session import open_client
from sf_pipeline.secrets import load_cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.sync.chunks import DEFAULT_ROWS_PER_CHUNK
from sf_pipeline.sync.service import Services, run_sync


def hold_at_write(database: Database, n: int, marker: Path) -> None:
    writes = 0
    lock = threading.Lock()

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal writes
        if not statement.lstrip().upper().startswith("INSERT INTO USERS"):
            return
        with lock:
            writes += 1
            hold = writes == n
        if hold:
            marker.write_text("holding")
            threading.Event().wait()

    event.listen(database.engine, "after_cursor_execute", after_execute)


def main() -> None:
    settings = load_settings()
    database = Database.from_settings(settings)
    cipher = load_cipher(settings)
    if os.environ.get("HOLD_AT_WRITE"):
        hold_at_write(database, int(os.environ["HOLD_AT_WRITE"]), Path(os.environ["HOLD_MARKER"]))
    services = Services(settings=settings, database=database, cipher=cipher,
                        open_client=lambda n: open_client(database, cipher, n),
                        page_size=int(os.environ.get("PAGE_SIZE", "2000")),
                        rows_per_chunk=int(os.environ.get("ROWS_PER_CHUNK", str(DEFAULT_ROWS_PER_CHUNK))))
    summary = run_sync(services, sys.argv[1], f"child-{uuid.uuid4().hex}")
    print(summary.created, summary.updated, flush=True)


if __name__ == "__main__":
    main()
