"""Clients for stored integrations: what the pipeline and the CLI open by integration name. The
one place that wires the Salesforce client to the application database's credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.salesforce.tokens import StoredTokenSource
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import CredentialStore


def database_token_source(database: Database, cipher: Cipher, name: str, **options: Any) -> StoredTokenSource:
    """Tokens of integration ``name``, read from and refreshed into the database."""
    return StoredTokenSource(CredentialStore(database, cipher, name), name, **options)


def open_client(database: Database, cipher: Cipher, name: str, **options: Any) -> SalesforceClient:
    """A client for integration ``name``, its tokens read from and refreshed into the database.

    Fails early (``NotFoundError``) when there is no such integration or it was never connected.
    ``options`` are passed on to ``SalesforceClient`` (``api_version``, ``max_attempts``, ...).
    """
    tokens = database_token_source(database, cipher, name)
    tokens.current()
    return SalesforceClient(tokens, **options)


def describe_provider(database: Database, cipher: Cipher, name: str) -> Callable[[str], ObjectDescribe]:
    """``describe(object_name)`` for integration ``name``; each object is fetched once."""
    return open_client(database, cipher, name).describe
