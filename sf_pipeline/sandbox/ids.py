"""Salesforce record Ids: 15 case-sensitive characters plus a 3-character case checksum.

An Id here is ``<key prefix (3)><pod (2)>0<counter (9, base 62)><checksum (3)>``. The counter
digits use ``0-9A-Za-z`` so that ordering Ids as strings orders them by counter: a table that
hands out counters 1, 2, 3... in row order keeps its rows in Id order, and the row of an Id is
its counter minus one (no lookup dict needed).
"""

from __future__ import annotations

import numpy as np

KEY_PREFIXES = {
    "Lead": "00Q",
    "Contact": "003",
    "CampaignMember": "00v",
    "Campaign": "701",
    "Organization": "00D",
    "User": "005",
    "QueryLocator": "01g",
}

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The checksum maps each 5-bit "which of these 5 characters are upper case" mask to one character.
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "8d0"
_COUNTER_DIGITS = 9
_DIGIT_VALUE = {c: i for i, c in enumerate(DIGITS)}


def checksum(id15: str) -> str:
    out = []
    for block in range(3):
        bits = 0
        for j, ch in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out.append(_CHECKSUM[bits])
    return "".join(out)


def make_id(prefix: str, counter: int) -> str:
    digits = []
    for _ in range(_COUNTER_DIGITS):
        counter, d = divmod(counter, 62)
        digits.append(DIGITS[d])
    id15 = prefix + _POD + "".join(reversed(digits))
    return id15 + checksum(id15)


def make_ids(prefix: str, start: int, count: int) -> list[str]:
    """``make_id(prefix, c)`` for ``c`` in ``start .. start + count - 1``, vectorised."""
    if count <= 0:
        return []
    head = prefix + _POD
    counters = np.arange(start, start + count, dtype=np.int64)
    digits = np.empty((count, _COUNTER_DIGITS), dtype=np.int64)
    for pos in range(_COUNTER_DIGITS - 1, -1, -1):
        digits[:, pos] = counters % 62
        counters //= 62
    upper = np.zeros((count, 15), dtype=np.int64)
    upper[:, : len(head)] = [1 if "A" <= c <= "Z" else 0 for c in head]
    upper[:, len(head) :] = (digits >= 10) & (digits < 36)
    weights = np.tile(1 << np.arange(5), 3)
    bits = (upper * weights).reshape(count, 3, 5).sum(axis=2)
    out = np.empty((count, 18), dtype=np.uint8)
    out[:, : len(head)] = np.frombuffer(head.encode(), dtype=np.uint8)
    out[:, len(head) : 15] = np.frombuffer(DIGITS.encode(), dtype=np.uint8)[digits]
    out[:, 15:] = np.frombuffer(_CHECKSUM.encode(), dtype=np.uint8)[bits]
    text = out.tobytes().decode("ascii")
    return [text[i : i + 18] for i in range(0, 18 * count, 18)]


def normalize(value: str) -> str | None:
    """The canonical 18-character form of a 15- or 18-character Id, or None if it is not one.

    An 18-character Id is case-insensitive: its checksum says which letters are upper case.
    """
    if len(value) == 15 and value.isalnum() and value.isascii():
        return value + checksum(value)
    if len(value) == 18 and value.isalnum() and value.isascii():
        suffix = value[15:].upper()
        chars = list(value[:15])
        for block, code in enumerate(suffix):
            bits = _CHECKSUM.find(code)
            if bits < 0:
                return None
            for j in range(5):
                k = block * 5 + j
                chars[k] = chars[k].upper() if bits & (1 << j) else chars[k].lower()
        id15 = "".join(chars)
        return id15 + suffix
    return None


def counter_of(id18: str) -> int | None:
    """The counter encoded in an Id made by ``make_id``, or None for anything else."""
    if len(id18) != 18:
        return None
    value = 0
    for ch in id18[6:15]:
        d = _DIGIT_VALUE.get(ch)
        if d is None:
            return None
        value = value * 62 + d
    return value
