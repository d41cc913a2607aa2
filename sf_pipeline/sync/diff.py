"""Stage 2: map extracted records to user rows and decide, by external ID, what changes.

- no user with that external ID → create (a record already deleted in Salesforce is skipped);
- a user whose stored ``source_modified_at`` is newer → skipped: an older re-read never wins;
- deleted in Salesforce → the user is flagged ``deleted`` (never hard-deleted);
- any mapped value different (compared by digest) or the user was flagged deleted → update;
- otherwise unchanged, and not written at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from sf_pipeline.mapping import ObjectMapping
from sf_pipeline.storage.models import User
from sf_pipeline.sync.chunks import ChunkWriter, read_chunks
from sf_pipeline.sync.manifests import ChangeCounts, ChangedObject, ExtractedObject
from sf_pipeline.sync.plan import parse_sf_datetime
from sf_pipeline.sync.schemas import check_user_rows, extracted_records, invalid_extracted_rows, user_rows

LOOKUP_BATCH = 2000
MAX_WARNING_SAMPLES = 50

CHANGE_SCHEMA = pa.schema(
    [
        ("action", pa.string()),
        ("external_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("timezone", pa.string()),
        ("locale", pa.string()),
        ("data", pa.string()),
        ("source_object", pa.string()),
        ("source_id", pa.string()),
        ("source_modified_at", pa.timestamp("us", tz="UTC")),
        ("deleted", pa.bool_()),
        ("content_hash", pa.string()),
    ]
)


def external_id(integration: str, object_name: str, salesforce_id: str) -> str:
    return f"sf_{integration}_{object_name}_{salesforce_id}"


def content_digest(email: Any, phone: Any, timezone: Any, locale: Any, data: str) -> str:
    payload = "\x1f".join(("" if v is None else str(v)) for v in (email, phone, timezone, locale, data))
    return hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()


def _digest(email: Any, phone: Any, timezone: Any, locale: Any, data: str) -> str:
    """``content_digest`` with its join unrolled: the same bytes, hashed the same way."""
    payload = (
        ("" if email is None else str(email))
        + "\x1f"
        + ("" if phone is None else str(phone))
        + "\x1f"
        + ("" if timezone is None else str(timezone))
        + "\x1f"
        + ("" if locale is None else str(locale))
        + "\x1f"
        + str(data)
    )
    return _md5(payload.encode(), usedforsecurity=False).hexdigest()


_md5 = hashlib.md5

# ``json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)`` builds
# this encoder on every call, and its ``encode`` builds a C encoder on every call.
_DATA_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def data_encoder() -> Callable[[Any], str]:
    """A function giving exactly ``json.dumps(data, sort_keys=True, ensure_ascii=False,
    separators=(",", ":"), default=str)``, with the C encoder built once (per call of this
    function: keep one per loop, not per process; its circular-reference markers are its own)."""
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:
        return _DATA_ENCODER.encode
    markers: dict[int, Any] = {}
    encoder = _DATA_ENCODER
    iterencode = make_encoder(
        markers,
        encoder.default,
        json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        True,
        False,
        True,
    )

    def encode(data: Any) -> str:
        if isinstance(data, str):
            return encoder.encode(data)
        try:
            chunks = iterencode(data, 0)
        except BaseException:
            markers.clear()  # as a fresh encoder would start
            raise
        if not isinstance(chunks, list | tuple):
            chunks = list(chunks)
        return "".join(chunks)

    return encode


# Salesforce's own datetime shape, 2024-01-01T00:00:00.000+0000: read by slicing. Anything else
# (or an impossible date) goes to ``parse_sf_datetime``, which decides as it always did.
_SF_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+0000")


def parse_modified(value: str) -> datetime:
    """``parse_sf_datetime``, without ``strptime`` for the format Salesforce always sends."""
    if type(value) is str and _SF_DATETIME.fullmatch(value):
        try:
            return datetime(
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
                int(value[20:23]) * 1000,
                UTC,
            )
        except ValueError:
            pass
    return parse_sf_datetime(value)


def surely_valid(schema: Any, columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> bool:
    """True only when pandera's ``schema`` would certainly accept a frame of these Arrow columns,
    judged with cheap Arrow compute. False means "not sure": let pandera decide, as before.

    It understands the dtypes ``str`` and ``bool``, ``nullable``, ``unique`` and the checks
    ``str_matches`` (Arrow's RE2 ``$`` is stricter than Python's), ``str_length`` and ``isin``;
    a schema using anything else is always handed to pandera."""
    try:
        if (
            schema.strict
            or schema.checks
            or schema.unique
            or schema.coerce
            or schema.index is not None
            or schema.ordered
            or schema.dtype is not None
            or schema.drop_invalid_rows
        ):
            return False
        for name, column in schema.columns.items():
            values = columns.get(name)
            if values is None or column.regex or len(values) == 0:
                return False
            dtype = str(column.dtype)
            if dtype == "str":
                if values.type != pa.string():
                    return False
            elif dtype == "bool":
                if values.type != pa.bool_():
                    return False
            else:
                return False
            if column.coerce and dtype != "bool":
                return False
            nulls = values.null_count
            if nulls and not column.nullable:
                return False
            if column.unique and (nulls or pc.count_distinct(values).as_py() != len(values)):
                return False
            for check in column.checks:
                if not check.ignore_na or check.element_wise or check.groupby is not None:
                    return False
                stats = check.statistics
                if check.name == "str_matches":
                    passed = pc.match_substring_regex(values, "^(?:" + stats["pattern"] + ")")
                elif check.name == "str_length":
                    lengths = pc.utf8_length(values)
                    passed = pc.and_kleene(
                        pc.greater_equal(lengths, stats["min_value"] if stats["min_value"] is not None else 0),
                        pc.less_equal(lengths, stats["max_value"] if stats["max_value"] is not None else 2**62),
                    )
                    if stats.get("exact_value") is not None:
                        passed = pc.equal(lengths, stats["exact_value"])
                elif check.name == "isin":
                    passed = pc.is_in(values, value_set=pa.array(list(stats["allowed_values"]), values.type))
                else:
                    return False
                if pc.sum(pc.invert(passed)).as_py():
                    return False
        return True
    except (pa.ArrowException, KeyError, TypeError, ValueError):
        return False


def _strings(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as an Arrow string array when every one is a ``str`` or None (Arrow infers
    ``string`` for exactly those, ``null`` when all are None), else None."""
    try:
        array = pa.array(values, from_pandas=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if array.type == pa.string():
        return array
    if array.type == pa.null():
        return array.cast(pa.string())
    return None


@dataclass(frozen=True)
class Existing:
    content_hash: str | None
    source_modified_at: datetime | None
    deleted: bool


class ExistingUsers:
    """Reads the stored digest of the users a chunk touches, a batch of external IDs at a time."""

    def __init__(self, session: Session, project_id: int, integration_id: int, object_name: str) -> None:
        self.session = session
        self.project_id = project_id
        self.any = bool(
            session.scalar(
                select(exists().where(User.integration_id == integration_id, User.source_object == object_name))
            )
        )
        self._query = select(User.external_id, User.content_hash, User.source_modified_at, User.deleted).where(
            User.project_id == project_id, User.external_id.in_(bindparam("ids", expanding=True))
        )

    def lookup(self, external_ids: Sequence[str]) -> dict[str, Existing]:
        if not self.any:
            return {}
        found: dict[str, Existing] = {}
        for start in range(0, len(external_ids), LOOKUP_BATCH):
            batch = list(external_ids[start : start + LOOKUP_BATCH])
            for ext_id, digest, modified, deleted in self.session.execute(self._query, {"ids": batch}):
                found[ext_id] = Existing(digest, modified, bool(deleted))
        return found


def _nest(fields: Sequence[str], row: dict[str, Any]) -> dict[str, Any]:
    """Put flattened parent paths (``Lead.Email``) back into Salesforce's nested record shape."""
    record: dict[str, Any] = {}
    for name in fields:
        if "." in name:
            parent, leaf = name.split(".", 1)
            record.setdefault(parent, {})[leaf] = row[name]
        else:
            record[name] = row[name]
    return record


def diff_object(
    extracted: ExtractedObject,
    *,
    integration: str,
    mapping: ObjectMapping,
    existing: ExistingUsers,
    out_dir: Path,
    warnings: list[dict[str, str]],
    on_chunk: Callable[[ChangeCounts], None] | None = None,
) -> ChangedObject:
    object_name = extracted.object_name
    writer = ChunkWriter(out_dir, f"changes-{object_name}", CHANGE_SCHEMA)
    try:
        counts = _diff_into(
            writer,
            extracted,
            integration=integration,
            mapping=mapping,
            existing=existing,
            warnings=warnings,
            on_chunk=on_chunk,
        )
    except BaseException:
        writer.abort()  # no change chunk lands after the stage has failed
        raise
    return ChangedObject(object_name=object_name, counts=counts, chunk_paths=writer.close())


def _diff_into(
    writer: ChunkWriter,
    extracted: ExtractedObject,
    *,
    integration: str,
    mapping: ObjectMapping,
    existing: ExistingUsers,
    warnings: list[dict[str, str]],
    on_chunk: Callable[[ChangeCounts], None] | None,
) -> ChangeCounts:
    object_name = extracted.object_name
    counts = ChangeCounts()
    fields = extracted.fields
    nested = any("." in f for f in fields)
    prefix = f"sf_{integration}_{object_name}_"
    convert = mapping.convert
    for table in read_chunks(extracted.chunk_paths):
        key_columns = ["Id", "LastModifiedDate", "IsDeleted"]
        if surely_valid(extracted_records, {name: table[name] for name in key_columns if name in table.column_names}):
            bad: set[int] = set()
        else:
            bad = invalid_extracted_rows(table.select(key_columns).to_pandas())
        ids = table.column("Id").to_pylist()
        if bad:
            counts.invalid_records += len(bad)
            for i in sorted(bad)[: max(0, MAX_WARNING_SAMPLES - len(warnings))]:
                warnings.append({"object": object_name, "reason": "invalid record", "id": str(ids[i])})
        stored = existing.lookup(
            [prefix + sf_id for i, sf_id in enumerate(ids) if i not in bad]
            if bad
            else [prefix + sf_id for sf_id in ids]
        )
        del ids
        encode_data = data_encoder()
        out: list[tuple[Any, ...]] = []
        keep = out.append
        # Records as dicts a slice at a time: a whole chunk of them would be the stage's peak memory.
        for row in _rows(table, bad):
            sf_id = row["Id"]
            ext_id = prefix + sf_id
            is_deleted = bool(row["IsDeleted"])
            modified = parse_modified(row["LastModifiedDate"])
            before = stored.get(ext_id)
            if before is None and is_deleted:
                counts.skipped += 1
                continue
            if before is not None and before.source_modified_at is not None and before.source_modified_at > modified:
                counts.unchanged += 1
                continue
            user = convert(_nest(fields, row) if nested else row)
            if user.warnings:
                counts.invalid_values += len(user.warnings)
                for w in user.warnings[: max(0, MAX_WARNING_SAMPLES - len(warnings))]:
                    warnings.append(
                        {
                            "object": object_name,
                            "id": sf_id,
                            "property": w.property,
                            "field": w.field,
                            "reason": w.reason,
                            "value": w.value,
                        }
                    )
            data = encode_data(user.data)
            email, phone, timezone, locale = user.email, user.phone, user.timezone, user.locale
            digest = _digest(email, phone, timezone, locale, data)
            if before is None:
                action = "create"
                counts.created += 1
            elif is_deleted:
                if before.deleted:
                    counts.unchanged += 1
                    continue
                action = "delete"
                counts.deleted += 1
            elif before.deleted or before.content_hash != digest:
                action = "update"
                counts.updated += 1
            else:
                counts.unchanged += 1
                continue
            keep((action, ext_id, email, phone, timezone, locale, data, sf_id, is_deleted, modified, digest))
        n_changes = len(out)
        if n_changes:
            columns = [list(column) for column in zip(*out, strict=True)]
            out.clear()
            checked = dict(zip(_CHECKED, columns[:9], strict=True))
            if not _user_rows_surely_valid(checked):
                check_user_rows(pd.DataFrame(checked))
            writer.append_columns(
                {
                    **checked,
                    "source_object": [object_name] * n_changes,
                    "source_modified_at": columns[9],
                    "content_hash": columns[10],
                },
                n_changes,
            )
        if on_chunk:
            on_chunk(counts)
    return counts


ROW_SLICE = 5_000


def _rows(table: pa.Table, bad: set[int]) -> Iterator[dict[str, Any]]:
    """Each row of ``table`` not in ``bad`` (row positions), as a dict, built ``ROW_SLICE`` at a time."""
    start = 0
    for batch in table.to_batches(max_chunksize=ROW_SLICE):
        if bad:
            for offset, row in enumerate(batch.to_pylist()):
                if start + offset not in bad:
                    yield row
        else:
            yield from batch.to_pylist()
        start += batch.num_rows


# The columns ``check_user_rows`` sees, in the order it always saw them.
_CHECKED = ("action", "external_id", "email", "phone", "timezone", "locale", "data", "source_id", "deleted")


def _user_rows_surely_valid(columns: Mapping[str, Sequence[Any]]) -> bool:
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        if name == "deleted":
            if any(type(v) is not bool for v in values):
                return False
            arrays[name] = pa.array(values, pa.bool_())
        else:
            array = _strings(values)
            if array is None:
                return False
            arrays[name] = array
    return surely_valid(user_rows, arrays)


def change_rows(paths: Iterable[str]) -> Iterable[list[dict[str, Any]]]:
    for table in read_chunks(list(paths)):
        yield table.to_pylist()
