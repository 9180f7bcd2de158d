"""What the running bot must not hold at rest (issue 17): each of these is megabytes it does not need.

Alembic and Mako are for migrating (a child process does it); limits (and its wrapt/deprecated) only with REDIS_URL
set. (redis itself stays: pybreaker imports it whenever it is installed, and Lukas uses its CircuitRedisStorage.)
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
