"""The journal of Bulk API 2.0 jobs runs have open, on SQLite and PostgreSQL: a job is known by its
integration and its Id, since two integrations' orgs can give their jobs the same Id."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sf_pipeline.storage.bulk_jobs import JobJournal, OpenJob
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import Integration
from sf_pipeline_tests.dbs import empty_database_url

JOB = "7508d0000000001AAA"


def integration(database: Database, name: str) -> int:
    with database.session() as session:
        row = Integration(name=name, project_id=1, login_url="https://login.salesforce.com")
        session.add(row)
        session.flush()
        return row.id


def test_two_integrations_runs_can_hold_jobs_with_the_same_id_and_each_forgets_only_its_own(
    database: Database,
) -> None:
    acme, beta = integration(database, "acme"), integration(database, "beta")
    JobJournal(database, acme, "acme-run").remember("Lead", JOB)
    JobJournal(database, beta, "beta-run").remember("Lead", JOB)  # another org, the same Id
    JobJournal(database, acme, "acme-run").forget(JOB)
    assert JobJournal(database, acme, "next").leftovers() == []
    assert JobJournal(database, beta, "next").leftovers() == [OpenJob(JOB, "beta-run", "Lead")]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_jobs_left_open_before_the_key_changed_are_still_aborted_by_the_next_run(
    backend: str, tmp_path: Path
) -> None:
    with empty_database_url(backend, tmp_path) as url:
        database = Database(url)
        try:
            database.migrate("0006_users_indexes")
            acme = integration(database, "acme")
            with database.engine.begin() as connection:
                connection.execute(text(
                    "INSERT INTO bulk_query_jobs (job_id, integration_id, run_id, object_name, created_at) "
                    "VALUES (:job, :integration, 'killed-run', 'Contact', '2026-11-29 10:00:00')"),
                    {"job": JOB, "integration": acme})
            database.migrate()
            assert JobJournal(database, acme, "next").leftovers() == [OpenJob(JOB, "killed-run", "Contact")]
        finally:
            database.dispose()
