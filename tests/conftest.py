"""Fixtures shared by every test package. Keep this file small and generic; helpers live in tests/helpers.py.

- `database_url`: an empty database, once per backend: "sqlite" (a file under tmp_path) and "postgres" (a fresh
  database on the server in $LUKAS_TEST_POSTGRES_URL, dropped afterwards; skipped when that is not set).
  The URL uses the async driver Lukas uses (sqlite+aiosqlite://, postgresql+psycopg://).
- `migrated_db`: the same, with all migrations applied.
- `db_engine`: an AsyncEngine on `migrated_db`, disposed after the test.
- hypothesis profiles: "ci" (2,000 examples a property, used when CI is set) and "dev" (200).
- autouse: the bot's own environment variables (SLACK_*, OPENAI_*, DATABASE_URL, LUKAS_CONFIG, PORT) are removed
  for every test, so a developer's shell cannot change what the tests see. Set what a test needs with monkeypatch.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import LUKAS_ENV_VARS, POSTGRES_ENV, in_thread, postgres_database

# Property tests (hypothesis): at least 2,000 examples each in CI (CI=true), fewer on a developer's machine;
# no per-example deadline (a shared 2-core machine is noisy). HYPOTHESIS_PROFILE=ci forces the CI count locally.
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _no_lukas_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LUKAS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'lukas.db'}"
        return
    server_url = os.environ.get(POSTGRES_ENV)
    if not server_url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    with postgres_database(server_url) as url:
        yield url


@pytest.fixture
def migrated_db(database_url: str) -> str:
    from bot.store import migrate

    in_thread(migrate.upgrade, database_url)
    return database_url


@pytest.fixture
async def db_engine(migrated_db: str) -> AsyncIterator[AsyncEngine]:
    from bot.store.db import create_engine

    engine = create_engine(migrated_db)
    try:
        yield engine
    finally:
        await engine.dispose()
