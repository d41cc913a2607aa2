"""The Bulk API 2.0 jobs a run has open, so a run killed mid-job leaves a trace the next run
can clean up (abort) instead of a job nobody knows about."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import BulkQueryJob


@dataclass(frozen=True)
class OpenJob:
    job_id: str
    run_id: str
    object_name: str


@dataclass(frozen=True)
class JobJournal:
    """Jobs of one integration's run, each write in its own transaction (it must outlive a kill)."""

    database: Database
    integration_id: int
    run_id: str

    def remember(self, object_name: str, job_id: str) -> None:
        with self.database.session() as session:
            session.add(BulkQueryJob(job_id=job_id, integration_id=self.integration_id, run_id=self.run_id,
                                     object_name=object_name))

    def forget(self, job_id: str) -> None:
        with self.database.session() as session:
            session.execute(delete(BulkQueryJob).where(BulkQueryJob.integration_id == self.integration_id,
                                                       BulkQueryJob.job_id == job_id))

    def leftovers(self) -> list[OpenJob]:
        """Jobs other runs of this integration left open (no two runs of one integration overlap,
        so every one of them belongs to a run that died)."""
        with self.database.session() as session:
            rows = session.scalars(
                select(BulkQueryJob)
                .where(BulkQueryJob.integration_id == self.integration_id, BulkQueryJob.run_id != self.run_id)
                .order_by(BulkQueryJob.created_at)
            )
            return [OpenJob(r.job_id, r.run_id, r.object_name) for r in rows]
