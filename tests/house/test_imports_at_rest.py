"""What the running bot must not hold at rest (issue 17): each of these is megabytes it does not need.

Alembic and Mako are for migrating (a child process does it); limits (and its wrapt/deprecated) only with REDIS_URL
set; PostgreSQL's dialect only on PostgreSQL. (redis itself stays: pybreaker imports it whenever it is installed, and
Lukas uses its CircuitRedisStorage.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers import clean_env

NOT_AT_REST = ("alembic", "mako", "limits", "deprecated")

# A fresh interpreter: the test process itself has imported all of these long ago.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import bot.runtime, bot.startup, bot.cli
    from bot.breaker import Breaker
    from bot.shared.state import shared_state

    assert shared_state(None) is None
    breaker = Breaker(name="probe", fail_max=1, reset_seconds=1)
    with breaker.calling():
        pass
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)


def _top_level_modules(script: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", script], env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_the_running_bot_imports_no_migration_machinery_and_no_rate_limit_storage() -> None:
    loaded = _top_level_modules(SCRIPT)
    assert "bot" in loaded and "pybreaker" in loaded and "sqlalchemy" in loaded  # the probe really ran
    assert sorted(set(NOT_AT_REST) & loaded) == []


def test_the_shared_rate_limits_are_imported_once_redis_url_is_set() -> None:
    script = SCRIPT.replace("assert shared_state(None) is None", "shared_state('redis://127.0.0.1:1/0')")
    assert {"redis", "limits"} <= _top_level_modules(script)


def test_a_sqlite_bot_holds_no_postgresql_dialect_and_each_dialect_upserts_with_its_own_insert() -> None:
    """PostgreSQL's dialect package imports its five drivers' modules (bench/memory_at_rest.py: 186.8 -> 184.4 MB
    on SQLite once only the engine's own dialect was imported)."""
    script = textwrap.dedent(
        """
        import json, sys
        import bot.runtime, bot.startup, bot.cli
        from bot.store.db import create_engine, upsert_insert

        engine = create_engine("sqlite+aiosqlite:///:memory:")
        sqlite_insert = upsert_insert(engine.dialect.name)
        before = sorted(name for name in sys.modules if name.startswith("sqlalchemy.dialects."))
        postgresql_insert = upsert_insert("postgresql")
        print(json.dumps([before, sqlite_insert.__module__, postgresql_insert.__module__]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    dialects, sqlite_module, postgresql_module = json.loads(result.stdout)
    assert "sqlalchemy.dialects.sqlite.base" in dialects  # the probe really made an engine
    assert [name for name in dialects if name.startswith("sqlalchemy.dialects.postgresql")] == []
    assert sqlite_module == "sqlalchemy.dialects.sqlite.dml"
    assert postgresql_module == "sqlalchemy.dialects.postgresql.dml"
