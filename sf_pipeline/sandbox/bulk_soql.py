"""The SOQL Bulk API 2.0 refuses to run, checked when a query job is created.

Salesforce's "Create a Query Job" page lists what Bulk API 2.0 does not support: GROUP BY,
OFFSET and TYPEOF clauses, aggregate functions such as COUNT(), compound address and
geolocation fields (and FIELDS()), and parent-to-child relationship subqueries. Child-to-parent
paths (``Lead.Email`` on CampaignMember), ORDER BY and LIMIT are accepted. A real org answers
job creation with HTTP 400 and a one-element error list:

- compound fields: ``API_ERROR`` "Selecting compound data not supported in Bulk Query";
- subqueries: ``API_ERROR`` "Aggregate Relationships not supported in Bulk V2 Query with CSV
  content type.";
- the other clauses: ``INVALIDJOB`` with a message naming the clause.

The clause checks run on tokens, before the query is parsed, because the sandbox's REST parser
does not accept these constructs at all and would otherwise answer MALFORMED_QUERY. Compound
fields need the schema, so ``compound_fields`` runs on the compiled plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from sf_pipeline.sandbox.errors import BulkApiError, InvalidJob
from sf_pipeline.sandbox.schema import COMPOUND_TYPES
from sf_pipeline.sandbox.soql import Token, tokenize

AGGREGATE_FUNCTIONS = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
COMPOUND_MESSAGE = "Selecting compound data not supported in Bulk Query"
SUBQUERY_MESSAGE = "Aggregate Relationships not supported in Bulk V2 Query with CSV content type."


def check_clauses(soql: str) -> None:
    """Raise the error a real org gives for a clause Bulk API 2.0 does not support."""
    tokens = tokenize(soql)
    depth = 0
    in_select = False
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else tok
        if tok.kind == "punct" and tok.text == "(":
            if in_select and depth == 0 and nxt.keyword("SELECT"):
                raise BulkApiError(SUBQUERY_MESSAGE)
            depth += 1
            continue
        if tok.kind == "punct" and tok.text == ")":
            depth = max(0, depth - 1)
            continue
        if depth:
            continue
        if tok.keyword("SELECT") and i == 0:
            in_select = True
        elif tok.keyword("FROM"):
            in_select = False
        _check_token(tok, nxt, in_select)


def _check_token(tok: Token, nxt: Token, in_select: bool) -> None:
    if tok.kind != "ident":
        return
    word = tok.text.upper()
    opens = nxt.kind == "punct" and nxt.text == "("
    if in_select and word in AGGREGATE_FUNCTIONS and opens:
        raise InvalidJob(f"Aggregate functions such as {word}() are not supported by Bulk API 2.0 query jobs")
    if in_select and word == "FIELDS" and opens:
        raise BulkApiError(COMPOUND_MESSAGE)
    if in_select and word == "TYPEOF":
        raise InvalidJob("TYPEOF clauses are not supported by Bulk API 2.0 query jobs")
    if word == "GROUP" and nxt.keyword("BY"):
        raise InvalidJob("GROUP BY clauses are not supported by Bulk API 2.0 query jobs")
    if word == "OFFSET":
        raise InvalidJob("OFFSET clauses are not supported by Bulk API 2.0 query jobs")


def check_compound(field_types: Sequence[str]) -> None:
    """Compound address and geolocation fields cannot be selected (their components can)."""
    if any(t in COMPOUND_TYPES for t in field_types):
        raise BulkApiError(COMPOUND_MESSAGE)
