"""Edits a few sandbox records every interval, as the org's users would, so that the scheduled
incremental syncs of the demo integration find real changes.

Each round updates a few Leads and Contacts (new values in mapped fields: first name, phone,
title, industry, email opt-out), creates one or two people and, now and then, deletes a Lead.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Donald", "Frances", "Tim")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Knuth", "Allen")
TITLES = ("CTO", "VP Marketing", "Head of Growth", "Engineer", "Analyst", "Founder")
INDUSTRIES = ("Technology", "Retail", "Healthcare", "Finance", "Education", "Media")
COMPANIES = ("Initech", "Globex", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises")


class SandboxControl(Protocol):
    """The part of ``sf_pipeline.sandbox.control.ControlClient`` the generator uses."""

    def touch_random(self, sobject: str, k: int) -> list[str]: ...

    def update_many(self, sobject: str, changes: dict[str, dict[str, Any]]) -> None: ...

    def create(self, sobject: str, records: list[dict[str, Any]]) -> list[str]: ...

    def delete(self, sobject: str, record_ids: list[str]) -> None: ...


@dataclass(frozen=True)
class Round:
    updated: dict[str, int]
    created: dict[str, int]
    deleted: dict[str, int]

    def describe(self) -> str:
        def part(verb: str, counts: dict[str, int]) -> str | None:
            shown = [f"{n} {name}{'s' if n != 1 else ''}" for name, n in counts.items() if n]
            return f"{verb} {', '.join(shown)}" if shown else None

        parts = [p for p in (part("updated", self.updated), part("created", self.created),
                             part("deleted", self.deleted)) if p]
        return "; ".join(parts) or "no changes"


class ActivityGenerator:
    """``step()`` makes one round of changes; ``start()`` runs a round every ``interval`` seconds
    in a daemon thread until ``stop()``. Errors in a round are reported and the next round runs."""

    def __init__(
        self,
        control: SandboxControl,
        *,
        interval: float = 60.0,
        seed: int | None = None,
        report: Callable[[str], None] = print,
        delete_chance: float = 0.3,
    ) -> None:
        self.control = control
        self.interval = interval
        self.random = random.Random(seed)
        self.report = report
        self.delete_chance = delete_chance
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round --------------------------------------------------------------------------------

    def step(self) -> Round:
        rnd = self.random
        leads = self.control.touch_random("Lead", rnd.randint(2, 4))
        if leads:
            self.control.update_many("Lead", {lead: self._lead_change() for lead in leads})
        contacts = self.control.touch_random("Contact", rnd.randint(1, 3))
        if contacts:
            self.control.update_many("Contact", {c: self._contact_change() for c in contacts})
        leads_to_add = [self._new_person(lead=True) for _ in range(rnd.randint(1, 2))]
        new_leads = self.control.create("Lead", leads_to_add)
        contacts_to_add = [self._new_person(lead=False)] if rnd.random() < 0.5 else []
        new_contacts = self.control.create("Contact", contacts_to_add) if contacts_to_add else []
        deleted: list[str] = []
        if rnd.random() < self.delete_chance:
            deleted = self.control.touch_random("Lead", 1)
            if deleted:
                self.control.delete("Lead", deleted)
        self.rounds += 1
        return Round(
            updated={"Lead": len(leads), "Contact": len(contacts)},
            created={"Lead": len(new_leads), "Contact": len(new_contacts)},
            deleted={"Lead": len(deleted)},
        )

    def _lead_change(self) -> dict[str, Any]:
        rnd = self.random
        change: dict[str, Any] = {"FirstName": rnd.choice(FIRST_NAMES), "Industry": rnd.choice(INDUSTRIES)}
        if rnd.random() < 0.5:
            change["Phone"] = self._phone()
        if rnd.random() < 0.3:
            change["HasOptedOutOfEmail"] = rnd.random() < 0.5
        return change

    def _contact_change(self) -> dict[str, Any]:
        rnd = self.random
        change: dict[str, Any] = {"Title": rnd.choice(TITLES), "Phone": self._phone()}
        if rnd.random() < 0.3:
            change["HasOptedOutOfEmail"] = rnd.random() < 0.5
        return change

    def _new_person(self, *, lead: bool) -> dict[str, Any]:
        rnd = self.random
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        person: dict[str, Any] = {
            "FirstName": first,
            "LastName": last,
            "Email": f"{first.lower()}.{last.lower()}.{rnd.randrange(10**6):06d}@demo.example",
            "Phone": self._phone(),
            "Title": rnd.choice(TITLES),
            "LeadSource": "Web",
            "HasOptedOutOfEmail": False,
        }
        if lead:
            person.update(Company=rnd.choice(COMPANIES), Industry=rnd.choice(INDUSTRIES),
                          Status="Open - Not Contacted")
        return person

    def _phone(self) -> str:
        return f"+1 555 {self.random.randrange(1000):03d} {self.random.randrange(10000):04d}"

    # -- the thread -------------------------------------------------------------------------------

    def start(self) -> ActivityGenerator:
        self._thread = threading.Thread(target=self._run, name="demo-activity", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done = self.step()
            except Exception as exc:  # the sandbox may be busy or stopping: try again next round
                if not self._stop.is_set():
                    self.report(f"Activity: a round failed ({type(exc).__name__}: {exc})")
                continue
            self.report(f"Activity: {done.describe()} in the sandbox org")
