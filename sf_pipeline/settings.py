"""Where sf_pipeline keeps its state, read from the environment when asked (never at import time).

- ``SF_PIPELINE_HOME``: the project home folder (default ``./.sf_pipeline``).
- ``SF_PIPELINE_DATABASE_URL``: the application database (default a SQLite file in the home).
  PostgreSQL URLs must name their driver (``postgresql+psycopg2://``): SQLAlchemy 2.1 otherwise
  picks psycopg 3, which dagster-postgres does not support either.
- ``SF_PIPELINE_SECRET_KEY`` / ``SF_PIPELINE_KEY_FILE``: the key that encrypts stored tokens.
- ``DAGSTER_HOME``: Dagster's instance folder (default ``<home>/dagster``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    key_file: Path
    dagster_home: Path

    @property
    def work_dir(self) -> Path:
        """Scratch space for the chunk files that pass between sync stages."""
        return self.home / "work"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    home = Path(env.get("SF_PIPELINE_HOME") or ".sf_pipeline").expanduser().resolve()
    database_url = env.get("SF_PIPELINE_DATABASE_URL") or f"sqlite:///{home / 'sf_pipeline.db'}"
    key_file = Path(env.get("SF_PIPELINE_KEY_FILE") or home / "secret.key").expanduser()
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
    return Settings(home=home, database_url=database_url, key_file=key_file, dagster_home=dagster_home)
