"""Small helpers shared by the test packages: ports, subprocess runs of `lukas`, throwaway PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO_ROOT / "config.yml"
POSTGRES_ENV = "LUKAS_TEST_POSTGRES_URL"
REDIS_ENV = "LUKAS_TEST_REDIS_URL"

# Variables a developer's shell may hold that would change what the bot does under test.
LUKAS_ENV_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "DATABASE_URL",
    "LUKAS_CONFIG",
    "PORT",
    "REDIS_URL",
    "LUKAS_DATA_DIR",
)

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (also usable as a 'dead' port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call that starts its own event loop (e.g. `migrate.upgrade`) on a fresh thread."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(function(*args, **kwargs))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"in_thread:{getattr(function, '__name__', 'call')}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 20) -> None:
    """SIGTERM a `lukas run` the caller started (unless it already ended), then SIGKILL it after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def clean_env(**overrides: str) -> dict[str, str]:
    """os.environ without the bot's own variables, plus overrides: what a subprocess `lukas` should see."""
    env = {key: value for key, value in os.environ.items() if key not in LUKAS_ENV_VARS}
    env.update(overrides)
    return env


def run_lukas(
    *args: str, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in a subprocess (the same interpreter as the tests), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# ----- PostgreSQL: one fresh database per test, so tests never see each other's rows


def _admin_conninfo(server_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    return url.set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def _admin_connect(server_url: str) -> Any:
    """An autocommit psycopg connection for CREATE/DROP DATABASE: the server's `postgres` db, else the given one."""
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        return psycopg.connect(_admin_conninfo(server_url, "postgres"), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        given = make_url(server_url).database or "postgres"
        return psycopg.connect(_admin_conninfo(server_url, given), autocommit=True, connect_timeout=10)


def create_postgres_database(server_url: str, *, prefix: str = "lukas_test") -> str:
    """Create an empty database next to `server_url`'s; returns its URL (async driver, as Lukas uses it)."""
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from bot.store.db import resolve_url

    name = f"{prefix}_{secrets.token_hex(6)}"
    with _admin_connect(server_url) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(resolve_url(server_url)).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(database_url: str) -> None:
    """Drop a database made by create_postgres_database, closing whatever connections are still open."""
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    if not name:
        return
    with _admin_connect(database_url) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    url = create_postgres_database(server_url)
    try:
        yield url
    finally:
        drop_postgres_database(url)
