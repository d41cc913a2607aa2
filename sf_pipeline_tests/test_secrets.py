"""The key that encrypts stored secrets: from the environment or a private key file."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from sf_pipeline.errors import ConfigError, UserError
from sf_pipeline.secrets import KEY_ENV, Cipher, SecretKeyMismatchError, load_cipher, read_or_create_key_file


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SF_PIPELINE_HOME": str(tmp_path / "home"), **extra}


def test_encrypt_then_decrypt_returns_the_text_unchanged() -> None:
    cipher = Cipher(Fernet.generate_key())
    for text in ("", "token", "Zoë ☃ 日本語", "x" * 10_000):
        encrypted = cipher.encrypt(text)
        assert encrypted != text or text == ""
        assert cipher.decrypt(encrypted) == text


def test_the_key_comes_from_the_environment_first(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    cipher = load_cipher(env=_env(tmp_path, **{KEY_ENV: key}))
    assert Cipher(key).decrypt(cipher.encrypt("hello")) == "hello"
    assert not (tmp_path / "home" / "secret.key").exists()


def test_a_key_file_is_created_on_first_use_readable_only_by_its_owner(tmp_path: Path) -> None:
    cipher = load_cipher(env=_env(tmp_path))
    key_file = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Cipher(key_file.read_bytes().strip()).decrypt(cipher.encrypt("hello")) == "hello"
    assert list(key_file.parent.iterdir()) == [key_file]  # no temporary file left behind


def test_the_key_file_is_reused_once_created(tmp_path: Path) -> None:
    first = load_cipher(env=_env(tmp_path))
    second = load_cipher(env=_env(tmp_path))
    assert second.decrypt(first.encrypt("same key")) == "same key"


def test_the_key_file_location_follows_settings(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "sf.key"
    load_cipher(env=_env(tmp_path, SF_PIPELINE_KEY_FILE=str(key_file)))
    assert key_file.exists()


def _create_key(path: str, results: Any) -> None:
    results.put(read_or_create_key_file(Path(path)))


def test_processes_creating_the_key_file_at_once_all_get_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_create_key, args=(str(path), results)) for _ in range(8)]
    for process in processes:
        process.start()
    keys = {results.get(timeout=30) for _ in processes}
    for process in processes:
        process.join(timeout=30)
    assert keys == {path.read_bytes().strip()}


def test_a_wrong_key_gives_a_clear_user_error_not_a_fernet_traceback() -> None:
    stored = Cipher(Fernet.generate_key()).encrypt("refresh-token")
    with pytest.raises(SecretKeyMismatchError, match="encrypted with another key") as raised:
        Cipher(Fernet.generate_key(), source="key file /x/secret.key").decrypt(stored)
    assert isinstance(raised.value, UserError)
    assert "/x/secret.key" in str(raised.value)


def test_garbage_ciphertext_is_reported_like_a_wrong_key() -> None:
    with pytest.raises(SecretKeyMismatchError):
        Cipher(Fernet.generate_key()).decrypt("not a fernet token ☃")


def test_an_invalid_key_in_the_environment_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=KEY_ENV):
        load_cipher(env=_env(tmp_path, **{KEY_ENV: "too-short"}))


def test_an_empty_key_file_is_an_error_not_a_silent_new_key(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "secret.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_cipher(env=_env(tmp_path))


def test_load_cipher_reads_the_process_environment_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv("SF_PIPELINE_HOME", str(tmp_path))
    assert Cipher(key).decrypt(load_cipher().encrypt("x")) == "x"
    assert os.listdir(tmp_path) == []


def test_cipher_repr_never_shows_the_key() -> None:
    key = Fernet.generate_key()
    assert key.decode() not in repr(Cipher(key))
