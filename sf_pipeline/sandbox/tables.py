"""Column storage for one sObject: a list per field, one slot per row, rows in Id order.

Rows are never removed (deletion is a soft delete), and a new row's Id encodes ``row + 1``, so
``row_of`` is arithmetic and row order is Id order. Values are stored in the form the wire uses:
text as ``str`` (empty text is ``None``, as in Salesforce), numbers as ``int``/``float``, booleans
as ``bool``, dates as ``YYYY-MM-DD`` and datetimes as ``YYYY-MM-DDTHH:MM:SS.mmm+0000`` strings.
Derived fields (a person's ``Name``, a campaign member's copied ``Email``) are computed from
other columns when read. Callers hold the org lock while writing; readers may read without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sf_pipeline.sandbox.ids import counter_of, make_id, make_ids
from sf_pipeline.sandbox.schema import ObjectSchema

Getter = Callable[[int], Any]


class Table:
    def __init__(self, schema: ObjectSchema) -> None:
        self.sobject = schema.name
        self.prefix = schema.key_prefix
        self.columns: dict[str, list[Any]] = {f.name: [] for f in schema.all_fields()}
        self.defaults: dict[str, Any] = {f.name: (False if f.type == "boolean" else None) for f in schema.all_fields()}
        self.derived: dict[str, Getter] = {}
        self.size = 0
        # Hard-deleted rows (no query returns them) and when each row in the Recycle Bin was
        # deleted: see ``recycle_bin``.
        self.purged: set[int] = set()
        self.deleted_at: dict[int, str] = {}

    def derive(self, name: str, get: Getter) -> None:
        """Compute ``name`` from other columns instead of storing it."""
        del self.columns[name]
        del self.defaults[name]
        self.derived[name] = get

    def getter(self, name: str) -> Getter:
        column = self.columns.get(name)
        return column.__getitem__ if column is not None else self.derived[name]

    @property
    def ids(self) -> list[str]:
        return self.columns["Id"]

    def row_of(self, record_id: str) -> int | None:
        counter = counter_of(record_id)
        if counter is None or not 0 < counter <= self.size:
            return None
        row = counter - 1
        return row if self.columns["Id"][row] == record_id and row not in self.purged else None

    def append(self, values: dict[str, Any]) -> int:
        row = self.size
        for name, column in self.columns.items():
            column.append(values.get(name, self.defaults[name]))
        self.columns["Id"][row] = make_id(self.prefix, row + 1)
        self.size = row + 1
        return row

    def extend(self, data: dict[str, list[Any]], count: int) -> list[str]:
        """Append ``count`` rows from whole columns (missing columns get their default)."""
        start = self.size
        new_ids = make_ids(self.prefix, start + 1, count)
        for name in data:
            if name not in self.columns:
                raise KeyError(f"{self.sobject} has no stored column {name}")
            if len(data[name]) != count:
                raise ValueError(f"column {name} has {len(data[name])} values, expected {count}")
        for name, column in self.columns.items():
            values = new_ids if name == "Id" else data.get(name)
            if values is None:
                column.extend([self.defaults[name]] * count)
            else:
                column.extend(values)
        self.size = start + count
        return new_ids

    def record(self, row: int) -> dict[str, Any]:
        values = {name: column[row] for name, column in self.columns.items()}
        values.update((name, get(row)) for name, get in self.derived.items())
        return values

    def add_column(self, name: str, default: Any) -> None:
        self.columns[name] = [default] * self.size
        self.defaults[name] = default

    def rename_column(self, old: str, new: str) -> None:
        if old in self.derived:
            self.derived = {(new if k == old else k): v for k, v in self.derived.items()}
            return
        self.columns = {(new if k == old else k): v for k, v in self.columns.items()}
        self.defaults = {(new if k == old else k): v for k, v in self.defaults.items()}

    def drop_column(self, name: str) -> None:
        if name in self.derived:
            del self.derived[name]
            return
        del self.columns[name]
        del self.defaults[name]
