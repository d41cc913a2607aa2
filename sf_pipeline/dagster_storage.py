"""Dagster's PostgreSQL storages, keeping their connection open between calls.

``dagster-postgres`` opens a new PostgreSQL connection for every storage call outside the
webserver (its engines use SQLAlchemy's ``NullPool``). The daemon makes many such calls for each
run a sensor tick requests (the run, its snapshots, one "planned" event per asset and check, the
enqueue event, the tick's own bookkeeping), and on a loaded machine opening a connection, which
starts a PostgreSQL backend, was half of the dispatcher's tick: 10 runs took 2.2-2.4 s with
a connection per call and 0.9-1.1 s with these classes (``README.md``, *Scheduling*).

These are the ``dagster_postgres`` classes with the one change the webserver already makes to
them at start-up (``optimize_for_webserver``): one connection kept open and reused, more opened
while several threads need one at once (no upper bound, as before), none of them with a statement
timeout. The production instance files name them instead of the ``storage: postgres`` block, with
the same ``postgres_db`` settings; every process that reads those files (webserver, daemon, code
server, run workers) therefore needs this package installed, which the project's image has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# No statement timeout (Dagster's default outside the webserver), connections recycled hourly, and
# no cap on connections open at once: beyond the one kept, a thread opens its own as before.
STATEMENT_TIMEOUT_MS = 0
POOL_RECYCLE_S = 3600
UNBOUNDED_OVERFLOW = -1


def _keep_one_connection(storage: Any) -> None:
    storage.optimize_for_webserver(
        statement_timeout=STATEMENT_TIMEOUT_MS, pool_recycle=POOL_RECYCLE_S, max_overflow=UNBOUNDED_OVERFLOW
    )


def _arguments(inst_data: Any, config_value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "inst_data": inst_data,
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
    }


class _KeepsOneConnection:
    """Mixed in before a ``dagster_postgres`` storage: the storage is built as Dagster builds it
    from the instance file, then keeps its connection (``optimize_for_webserver``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _keep_one_connection(self)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Self:
        return cls(**_arguments(inst_data, config_value))


class PooledPostgresRunStorage(_KeepsOneConnection, PostgresRunStorage):
    pass


class PooledPostgresEventLogStorage(_KeepsOneConnection, PostgresEventLogStorage):
    pass


class PooledPostgresScheduleStorage(_KeepsOneConnection, PostgresScheduleStorage):
    pass
