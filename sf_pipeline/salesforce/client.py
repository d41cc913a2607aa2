"""The Salesforce REST client the pipeline uses: simple-salesforce in direct mode, plus what it
lacks — token refresh through a ``TokenSource``, retries with backoff for transient failures,
typed results, and call counting.

simple-salesforce built from a bare session id cannot refresh it: a 401 surfaces as
``SalesforceExpiredSession``. Every call here goes through ``_call``, which refreshes the token and
repeats the *same* request (for a query page: the same ``nextRecordsUrl``), so paging never loses
or repeats a page.

Not thread-safe: give each thread its own client (they can share a ``TokenSource``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import requests
from simple_salesforce import exceptions as sf_exceptions
from simple_salesforce.api import Salesforce
from simple_salesforce.util import Usage

from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.salesforce.errors import (
    SESSION_EXPIRED_CODES,
    AuthenticationError,
    SalesforceError,
    TransientError,
    map_error,
)
from sf_pipeline.salesforce.oauth import Identity, parse_identity
from sf_pipeline.salesforce.tokens import AccessGrant, TokenSource

__all__ = ["ApiLimits", "ApiUsage", "Identity", "QueryPage", "SalesforceClient"]

T = TypeVar("T")

MAX_BATCH_SIZE = 2000
DEFAULT_TIMEOUT = (10.0, 120.0)
# A fresh token can meet a 401 when another process refreshed in between (we adopt its token,
# which may itself be stale); three refreshes per call is plenty before giving up.
MAX_REFRESHES_PER_CALL = 3

_CAUGHT = (SalesforceError, sf_exceptions.SalesforceError, requests.RequestException)


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of a SOQL result, records as Salesforce sends them (each with ``attributes``).
    ``total_size`` is the size of the whole result and the same on every page."""

    records: list[dict[str, Any]]
    total_size: int
    done: bool


@dataclass(frozen=True)
class ApiLimits:
    """The org's daily REST API quota (``DailyApiRequests``)."""

    max: int
    remaining: int

    @property
    def remaining_fraction(self) -> float:
        return self.remaining / self.max if self.max else 0.0


@dataclass(frozen=True)
class ApiUsage:
    """``Sforce-Limit-Info: api-usage=used/max`` from the last response."""

    used: int
    max: int


class SalesforceClient:
    def __init__(
        self,
        tokens: TokenSource,
        *,
        api_version: str = "59.0",
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.tokens = tokens
        self.api_version = api_version
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._timeout = timeout
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._grant: AccessGrant | None = None
        self._sf: Salesforce | None = None
        self._describes: dict[str, ObjectDescribe] = {}
        self.api_calls = 0
        self.token_refreshes = 0
        self.retries = 0
        self.api_usage: ApiUsage | None = None

    # ----------------------------------------------------------------------- queries

    def query_pages(
        self, soql: str, *, include_deleted: bool = False, batch_size: int = MAX_BATCH_SIZE
    ) -> Iterator[QueryPage]:
        """Run ``soql`` and yield its pages lazily, following ``nextRecordsUrl`` until done.
        ``include_deleted`` uses ``queryAll`` (soft-deleted and archived rows too)."""
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        # Only a hint: a real org serves at least 200 rows a page, and may send fewer than asked
        # (e.g. when several long text fields are selected).
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        result = self._call(_first_page, soql, include_deleted, headers, self._timeout)
        yield _page(result)
        while not result["done"]:
            result = self._call(_next_page, result["nextRecordsUrl"], include_deleted, headers, self._timeout)
            yield _page(result)

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of a (small) result in one list."""
        return [r for page in self.query_pages(soql, include_deleted=include_deleted) for r in page.records]

    def count(self, soql_count: str) -> int:
        """``SELECT COUNT() FROM ...`` answers with no records, only ``totalSize``."""
        result = self._call(_first_page, soql_count, False, {}, self._timeout)
        return int(result["totalSize"])

    # ----------------------------------------------------------------------- metadata

    def describe(self, object_name: str) -> ObjectDescribe:
        """The object's fields, fetched once per client."""
        key = object_name.lower()
        cached = self._describes.get(key)
        if cached is None:
            raw = self._call(_restful, f"sobjects/{object_name}/describe", self._timeout)
            cached = self._describes[key] = ObjectDescribe.from_describe(raw)
        return cached

    def limits(self) -> ApiLimits:
        raw = self._call(_limits, self._timeout)
        daily = raw["DailyApiRequests"]
        return ApiLimits(max=int(daily["Max"]), remaining=int(daily["Remaining"]))

    def identity(self) -> Identity:
        """Who the token belongs to, from the identity URL (on the login host, so not counted
        in ``api_calls``)."""
        body = self._call(self._get_identity, count=False)
        grant = self._current_grant()
        return parse_identity(grant.identity_url or "", body)

    # ----------------------------------------------------------------------- plumbing

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn(sf)`` as one counted API call with this client's refresh and retry rules: a
        stale token is refreshed and ``fn`` repeated; a ``TransientError`` is retried with backoff.
        For endpoints this client has no method for (the Bulk API 2.0 job client uses it)."""
        return self._call(fn)

    def _call(self, fn: Callable[..., T], *args: Any, count: bool = True) -> T:
        attempts = 0
        refreshes = 0
        while True:
            try:
                sf = self._api()  # the first token may need fetching, which can fail transiently
                if count:
                    self.api_calls += 1
                result = fn(sf, *args)
            except _CAUGHT as exc:
                error = map_error(exc)
            else:
                if count:
                    self._note_usage(sf)
                return result
            if isinstance(error, AuthenticationError) and (
                error.status == 401 or error.error_code in SESSION_EXPIRED_CODES
            ):
                if refreshes >= MAX_REFRESHES_PER_CALL:
                    raise error
                refreshes += 1
                attempts = self._refresh(attempts)
                continue
            attempts += 1
            if not isinstance(error, TransientError) or attempts >= self.max_attempts:
                raise error
            self._backoff(attempts)

    def _refresh(self, attempts: int) -> int:
        """Swap the stale token for a fresh one. A transient failure of the token endpoint
        uses up an attempt of the call being retried; returns the attempts used so far."""
        stale = self._current_grant()
        while True:
            self.token_refreshes += 1
            try:
                self._use(self.tokens.refresh(stale))
                return attempts
            except TransientError:
                attempts += 1
                if attempts >= self.max_attempts:
                    raise
                self._backoff(attempts)

    def _backoff(self, attempt: int) -> None:
        self.retries += 1
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        self._sleep(cap / 2 + random.uniform(0, cap / 2))

    def _current_grant(self) -> AccessGrant:
        if self._grant is None:
            self._use(self.tokens.current())
        assert self._grant is not None
        return self._grant

    def _api(self) -> Salesforce:
        if self._sf is None:
            self._current_grant()
        assert self._sf is not None
        return self._sf

    def _use(self, grant: AccessGrant) -> None:
        self._grant = grant
        self._sf = Salesforce(
            instance_url=grant.instance_url,
            session_id=grant.access_token,
            session=self._session,
            version=self.api_version,
            # Plain dicts keep key order and decode faster than the default OrderedDict.
            object_pairs_hook=dict,
        )

    def _note_usage(self, sf: Salesforce) -> None:
        usage = sf.api_usage.get("api-usage")
        if isinstance(usage, Usage):
            self.api_usage = ApiUsage(used=usage.used, max=usage.total)

    def _get_identity(self, sf: Salesforce) -> Any:
        grant = self._current_grant()
        if not grant.identity_url:
            # Only a refresh grant names the identity URL; get one if the source had none.
            self._use(self.tokens.refresh(grant))
            self.token_refreshes += 1
            grant = self._current_grant()
        if not grant.identity_url:
            raise SalesforceError("the token source knows no identity URL for this org")
        response = self._session.get(
            grant.identity_url,
            headers={"Authorization": f"Bearer {grant.access_token}", "Accept": "application/json"},
            timeout=self._timeout,
        )
        if response.status_code != 200:
            raise map_error(response, secrets=[grant.access_token])
        return response.json()

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _first_page(sf: Salesforce, soql: str, include_deleted: bool, headers: dict[str, str], timeout: Any) -> Any:
    return sf.query(soql, include_deleted=include_deleted, headers=headers, timeout=timeout)


def _next_page(sf: Salesforce, next_url: str, include_deleted: bool, headers: dict[str, str], timeout: Any) -> Any:
    return sf.query_more(
        next_url, identifier_is_url=True, include_deleted=include_deleted, headers=headers, timeout=timeout
    )


def _restful(sf: Salesforce, path: str, timeout: Any) -> Any:
    return sf.restful(path, timeout=timeout)


def _limits(sf: Salesforce, timeout: Any) -> Any:
    return sf.limits(timeout=timeout)


def _page(result: dict[str, Any]) -> QueryPage:
    return QueryPage(records=result["records"], total_size=int(result["totalSize"]), done=bool(result["done"]))
