"""Encryption of stored OAuth secrets (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key comes from ``SF_PIPELINE_SECRET_KEY`` when set, otherwise from the key file
(``Settings.key_file``), which is created with mode 0600 the first time a key is needed. A key
file is only ever created while no credentials are stored: if it vanishes later, a new key would
make every stored credential unreadable, so that is an error saying how to recover instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from sf_pipeline.errors import ConfigError, UserError
from sf_pipeline.settings import Settings, load_settings

KEY_ENV = "SF_PIPELINE_SECRET_KEY"


class SecretKeyError(ConfigError):
    """The secret key is missing, empty or malformed. The operation that needed it failed: exit 1."""

    exit_code = 1


class SecretKeyMismatchError(UserError):
    """A stored secret was encrypted with a different key than the one in use."""

    exit_code = 1


class Cipher:
    def __init__(self, key: str | bytes, *, source: str = "the configured key") -> None:
        self.source = source
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                f"the secret key from {source} is not a valid key (expected 32 url-safe base64-encoded "
                "bytes, as made by `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise SecretKeyMismatchError(
                f"a stored secret cannot be decrypted with the key from {self.source}: it was encrypted "
                f"with another key. Restore the original key ({KEY_ENV} or the key file), or reconnect "
                "the integration to store new credentials."
            ) from exc

    def __repr__(self) -> str:
        return f"Cipher(source={self.source!r})"


class UnusableCipher(Cipher):
    """Stands in for a cipher whose key could not be loaded, so that work which needs no secret
    (recording that a sync failed) still runs; any use raises the key's error."""

    def __init__(self, error: SecretKeyError) -> None:
        self.source = "an unusable key"
        self.error = error

    def encrypt(self, plaintext: str) -> str:
        raise self.error

    def decrypt(self, ciphertext: str) -> str:
        raise self.error


def load_cipher(
    settings: Settings | None = None, env: Mapping[str, str] | None = None, *, defer_errors: bool = False
) -> Cipher:
    """The cipher for the configured key. With ``defer_errors`` a key problem is raised only when
    a secret is used (see ``UnusableCipher``)."""
    try:
        return _load_cipher(settings, os.environ if env is None else env)
    except SecretKeyError as exc:
        if defer_errors:
            return UnusableCipher(exc)
        raise


def _load_cipher(settings: Settings | None, env: Mapping[str, str]) -> Cipher:
    if KEY_ENV in env:
        if not env[KEY_ENV].strip():
            raise SecretKeyError(f"${KEY_ENV} is set but empty: set it to the key, or unset it to use the key file")
        return Cipher(env[KEY_ENV].strip(), source=f"${KEY_ENV}")
    settings = settings or load_settings(dict(env))
    path = settings.key_file
    if not path.exists() and credentials_stored(settings):
        raise SecretKeyError(
            f"the key file {path} is missing, but the database holds credentials encrypted with it. "
            f"Restore the file from a backup (or set ${KEY_ENV}); to start over instead, delete the "
            "credentials with `sf-pipeline integration disconnect NAME` and connect again."
        )
    return Cipher(read_or_create_key_file(path), source=f"key file {path}")


def credentials_stored(settings: Settings) -> bool:
    """Whether the application database holds any encrypted credentials (false if it does not
    exist). Plain SQLAlchemy, not ``sf_pipeline.storage``, which itself depends on this module."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    file = Path(str(url.database)).expanduser() if url.database not in (None, "", ":memory:") else None
    if url.get_backend_name() == "sqlite" and file is not None and not file.exists():
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("credentials"):
                return False
            return connection.execute(text("SELECT 1 FROM credentials LIMIT 1")).first() is not None
    finally:
        engine.dispose()


def read_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``; a new key if the file does not exist yet.

    Creation is atomic and race-safe: the key is written to a private temporary file which is then
    hard-linked into place. Linking fails if another process got there first, and then its key wins.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except IsADirectoryError:
        raise SecretKeyError(f"the key file {path} is a folder, not a file") from None
    except PermissionError:
        raise SecretKeyError(f"the key file {path} cannot be read: permission denied") from None
    if not key:
        raise SecretKeyError(
            f"the key file {path} is empty: restore the key from a backup (or set ${KEY_ENV}); a new key "
            "cannot read the stored credentials, so every integration would have to be reconnected"
        )
    return key
