"""The application database: engine settings, sessions, and migrations that match the models."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from sf_pipeline.errors import ConfigError
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import MIGRATIONS_DIR, Database
from sf_pipeline.storage.models import Base, Integration, ObjectConfig
from sf_pipeline_tests.dbs import empty_database_url, sqlite_url


def head() -> str | None:
    """The newest migration's revision."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _integration(name: str = "acme") -> Integration:
    return Integration(name=name, project_id=1, login_url="https://login.salesforce.com")


def test_migrated_schema_matches_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrating_twice_changes_nothing(database: Database) -> None:
    database.migrate()
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head()
        assert set(inspect(connection).get_table_names()) >= set(Base.metadata.tables)


def test_session_commits_when_the_block_ends(database: Database) -> None:
    with database.session() as session:
        session.add(_integration())
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 1


def test_session_rolls_back_when_the_block_raises(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as session:
        session.add(_integration())
        session.flush()
        raise RuntimeError("boom")
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 0


def test_deleting_an_integration_cascades_to_its_configuration(database: Database) -> None:
    with database.session() as session:
        integration = _integration()
        integration.objects = [ObjectConfig(object_name="Lead", match="all", rules=[])]
        session.add(integration)
    with database.engine.begin() as connection:  # plain SQL: the database's own foreign keys act
        connection.execute(text("DELETE FROM integrations"))
        assert connection.execute(text("SELECT count(*) FROM integration_objects")).scalar_one() == 0


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path))
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
    database.dispose()


def test_bare_postgresql_url_is_rejected_with_the_driver_to_use() -> None:
    with pytest.raises(ConfigError, match=r"postgresql\+psycopg2://"):
        Database("postgresql://postgres@127.0.0.1/test")


@pytest.mark.parametrize("url", ["mysql+pymysql://u@h/db", "postgresql+psycopg://u@h/db", "not a url"])
def test_unsupported_database_urls_are_rejected(url: str) -> None:
    with pytest.raises(ConfigError, match="SF_PIPELINE_DATABASE_URL"):
        Database(url)


def test_database_repr_hides_the_password() -> None:
    database = Database("postgresql+psycopg2://user:s3cret@127.0.0.1:5432/db")
    assert "s3cret" not in repr(database)
    database.dispose()


def test_from_settings_creates_the_home_folder_and_migrates(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".sf_pipeline"
    database = Database.from_settings(load_settings({"SF_PIPELINE_HOME": str(home)}))
    try:
        assert (home / "sf_pipeline.db").exists()
        with database.engine.connect() as connection:
            assert "integrations" in inspect(connection).get_table_names()
    finally:
        database.dispose()


def test_from_settings_creates_the_folder_of_a_sqlite_file_elsewhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'app.db'}"
    env = {"SF_PIPELINE_HOME": str(tmp_path / "home"), "SF_PIPELINE_DATABASE_URL": url}
    Database.from_settings(load_settings(env)).dispose()
    assert (tmp_path / "elsewhere" / "app.db").exists()


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        database.migrate()
    finally:
        database.dispose()


def test_concurrent_migrations_from_threads_all_succeed(database: Database) -> None:
    url = database.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            _migrate(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_first_migrations_from_processes_create_the_schema_once(backend: str, tmp_path: Path) -> None:
    # The Dagster daemon, runs and the CLI may all start on an empty database at once.
    with empty_database_url(backend, tmp_path) as url:
        processes = [multiprocessing.get_context("fork").Process(target=_migrate, args=(url,)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        database = Database(url)
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head()]
        database.dispose()
