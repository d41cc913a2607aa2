"""Alembic environment. ``Database.migrate()`` passes an open connection in ``config.attributes``;
developers generating a revision pass ``-x url=...`` (or set ``sqlalchemy.url``) instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from sf_pipeline.storage.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things in place: later migrations use batch mode.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///path.db ...")
    return url


if context.is_offline_mode():
    _run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    engine = create_engine(_url())
    with engine.begin() as new_connection:
        _run(new_connection)
    engine.dispose()
