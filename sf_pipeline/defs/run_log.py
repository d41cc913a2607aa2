"""A run's sync log events, echoed into its Dagster event log.

The six events (``sync_started`` … ``health_check``) are written to the application database by
the sync and the checks, in the same transactions as what they describe. After each stage the
Dagster layer reads back what this run recorded and logs one line per event, named first, so the
run's log in the UI can be filtered by an event name and shows the same counts as
``sf-pipeline logs``.
"""

from __future__ import annotations

import dagster as dg

from sf_pipeline.events import EventType, describe_event, last_event_id, run_events_after
from sf_pipeline.sync.service import Services


class RunLog:
    def __init__(self, log: dg.DagsterLogManager, services: Services, run_id: str) -> None:
        self.log = log
        self.services = services
        self.run_id = run_id
        with services.database.session() as session:
            self.after = last_event_id(session)

    def echo(self) -> None:
        with self.services.database.session() as session:
            recorded = run_events_after(session, self.run_id, self.after)
            lines = [(event.type, bool((event.details or {}).get("passed", True)), describe_event(event))
                     for event in recorded]
            if recorded:
                self.after = recorded[-1].id
        for kind, passed, line in lines:
            if kind == EventType.SYNC_FAILED.value:
                self.log.error(line)
            elif kind == EventType.HEALTH_CHECK.value and not passed:
                self.log.warning(line)
            else:
                self.log.info(line)
