"""A sync in its own process, so a test can SIGKILL it: ``python -m sf_pipeline_tests.sync.sync_child``
with SF_PIPELINE_HOME, SF_PIPELINE_DATABASE_URL, REQUESTS_CA_BUNDLE and SF_PIPELINE_SECRET_KEY set."""

from __future__ import annotations

import os
import sys
import uuid

from sf_pipeline.salesforce.session import open_client
from sf_pipeline.secrets import load_cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.sync.service import Services, run_sync


def main() -> None:
    settings = load_settings()
    database = Database.from_settings(settings)
    cipher = load_cipher(settings)
    services = Services(settings=settings, database=database, cipher=cipher,
                        open_client=lambda n: open_client(database, cipher, n),
                        page_size=int(os.environ.get("PAGE_SIZE", "2000")))
    summary = run_sync(services, sys.argv[1], f"child-{uuid.uuid4().hex}")
    print(summary["created"], summary["updated"], flush=True)


if __name__ == "__main__":
    main()
