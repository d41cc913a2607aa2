"""Encryption of stored OAuth secrets (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key comes from ``SF_PIPELINE_SECRET_KEY`` when set, otherwise from the key file
(``Settings.key_file``), which is created with mode 0600 the first time a key is needed.
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


class SecretKeyMismatchError(UserError):
    """A stored secret was encrypted with a different key than the one in use."""


class Cipher:
    def __init__(self, key: str | bytes, *, source: str = "the configured key") -> None:
        self.source = source
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"the secret key from {source} is not a valid key (expected 32 url-safe base64-encoded "
                "bytes, as made by `Fernet.generate_key()`)"
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


def load_cipher(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> Cipher:
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return Cipher(env[KEY_ENV].strip(), source=f"${KEY_ENV}")
    settings = settings or load_settings(dict(env))
    return Cipher(read_or_create_key_file(settings.key_file), source=f"key file {settings.key_file}")


def read_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``; a new key if the file does not exist yet.

    Creation is atomic and race-safe: the key is written to a private temporary file which is then
    hard-linked into place. Linking fails if another process got there first, and then its key wins.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
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
    key = path.read_bytes().strip()
    if not key:
        raise ConfigError(
            f"the key file {path} is empty: restore the key (deleting the file makes a new key, and "
            "every integration must then be reconnected)"
        )
    return key
