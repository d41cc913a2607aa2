"""Where sf_pipeline keeps its state, read from the environment when asked (never at import time).

The home folder is found the same way in every terminal:

1. ``--home`` on the command line (the CLI puts it in ``SF_PIPELINE_HOME`` for its children), or
   ``SF_PIPELINE_HOME``;
2. else ``./.sf_pipeline`` when that folder exists (a project checkout, the demo);
3. else a per-user folder (``~/.local/share/sf_pipeline`` on Linux, from ``platformdirs``).

Everything else defaults from the home, and may be kept in the home's ``config.json`` so that no
``export`` is needed in a second terminal:

- ``SF_PIPELINE_DATABASE_URL`` / config ``database_url``: the application database (default a
  SQLite file in the home). PostgreSQL URLs must name their driver (``postgresql+psycopg2://``):
  SQLAlchemy 2.1 otherwise picks psycopg 3, which dagster-postgres does not support either.
- ``SF_PIPELINE_SECRET_KEY`` / ``SF_PIPELINE_KEY_FILE``: the key that encrypts stored tokens
  (default ``<home>/secret.key``).
- ``DAGSTER_HOME`` / config ``dagster_home``: Dagster's instance folder (default ``<home>/dagster``).
- ``REQUESTS_CA_BUNDLE`` / config ``ca_bundle``: the CA bundle of a local sandbox org that
  ``sf-pipeline sandbox serve`` or the demo started for this home (it includes the public CAs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOME_ENV = "SF_PIPELINE_HOME"
DATABASE_ENV = "SF_PIPELINE_DATABASE_URL"
KEY_FILE_ENV = "SF_PIPELINE_KEY_FILE"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
CA_ENVS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
LOCAL_HOME = Path(".sf_pipeline")
CONFIG_FILE = "config.json"
CONFIG_KEYS = ("database_url", "dagster_home", "ca_bundle")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    key_file: Path
    dagster_home: Path
    ca_bundle: Path | None = None
    # Where each value came from, for ``sf-pipeline env``: "--home", "$SF_PIPELINE_HOME", "config", ...
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def work_dir(self) -> Path:
        """Scratch space for the chunk files that pass between sync stages."""
        return self.home / "work"

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, "default")


def user_home() -> Path:
    # platformdirs knows each OS's convention (XDG on Linux, Application Support on macOS).
    from platformdirs import user_data_path

    return user_data_path("sf_pipeline", appauthor=False)


def find_home(env: Mapping[str, str]) -> tuple[Path, str]:
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser().resolve(), f"${HOME_ENV}"
    if LOCAL_HOME.is_dir():
        return LOCAL_HOME.resolve(), "./.sf_pipeline"
    return user_home(), "per-user default"


def read_config(home: Path) -> dict[str, Any]:
    """The home's ``config.json``; an unreadable file is ignored rather than blocking every command."""
    try:
        loaded = json.loads((home / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in loaded.items() if k in CONFIG_KEYS and isinstance(v, str)} if isinstance(
        loaded, dict) else {}


def update_config(home: Path, **values: str | None) -> None:
    """Set (or, with ``None``, remove) keys of the home's ``config.json``, atomically."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = read_config(home)
    for key, value in values.items():
        if key not in CONFIG_KEYS:
            raise KeyError(key)
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    temporary = home / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    temporary.replace(home / CONFIG_FILE)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    home, home_source = find_home(env)
    config = read_config(home)
    sources = [("home", home_source)]

    def pick(env_name: str, key: str, default: str) -> str:
        if env.get(env_name):
            sources.append((key, f"${env_name}"))
            return env[env_name]
        if config.get(key):
            sources.append((key, f"config ({home / CONFIG_FILE})"))
            return str(config[key])
        sources.append((key, "default"))
        return default

    database_url = pick(DATABASE_ENV, "database_url", f"sqlite:///{home / 'sf_pipeline.db'}")
    dagster_home = Path(pick(DAGSTER_HOME_ENV, "dagster_home", str(home / "dagster"))).expanduser().resolve()
    key_file = Path(env.get(KEY_FILE_ENV) or home / "secret.key").expanduser()
    ca_text = env.get(CA_ENVS[0]) or env.get(CA_ENVS[1])
    if ca_text:
        sources.append(("ca_bundle", f"${CA_ENVS[0] if env.get(CA_ENVS[0]) else CA_ENVS[1]}"))
    elif config.get("ca_bundle"):
        ca_text = str(config["ca_bundle"])
        sources.append(("ca_bundle", f"config ({home / CONFIG_FILE})"))
    return Settings(
        home=home,
        database_url=database_url,
        key_file=key_file,
        dagster_home=dagster_home,
        ca_bundle=Path(ca_text) if ca_text else None,
        sources=tuple(sources),
    )


_applied: Settings | None = None


def applied_settings() -> Settings:
    """The settings as the CLI found them before ``apply_environment`` (so that each value's
    source is the real one, not the variable it was then exported as)."""
    return _applied or load_settings()


def apply_environment(env: MutableMapping[str, str] | None = None) -> Settings:
    """Put the resolved home, Dagster home and the home's CA bundle in the environment of this
    process (and so of the Dagster runs and children it starts): the settings the CLI found are
    the ones every part of a run uses. Explicit environment variables are never overridden."""
    global _applied
    env = os.environ if env is None else env
    settings = _applied = load_settings(dict(env))
    env[HOME_ENV] = str(settings.home)
    env[DAGSTER_HOME_ENV] = str(settings.dagster_home)
    from_config = settings.ca_bundle is not None and settings.source("ca_bundle").startswith("config")
    if from_config and settings.ca_bundle is not None and settings.ca_bundle.is_file():
        for name in CA_ENVS:
            env.setdefault(name, str(settings.ca_bundle))
    return settings
