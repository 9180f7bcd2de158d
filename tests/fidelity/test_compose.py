"""docker-compose.yml, .env.example and the Dockerfile, checked by structure (no Docker engine runs the suite)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example_names() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))


def test_postgres_with_a_healthcheck_and_lukas_waiting_for_it() -> None:
    services = compose()["services"]
    db, lukas = services["db"], services["lukas"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"]) and db["healthcheck"]["retries"] >= 3
    assert lukas["depends_on"]["db"]["condition"] == "service_healthy"
    assert lukas["build"] == "." and lukas["env_file"] == ".env"
    assert (
        lukas["environment"]["DATABASE_URL"].startswith("postgresql://")
        and "@db:5432/" in lukas["environment"]["DATABASE_URL"]
    )


def test_config_read_only_and_data_in_volumes() -> None:
    spec = compose()
    lukas = spec["services"]["lukas"]
    mounts = {m.split(":")[1]: m for m in lukas["volumes"]}
    config_mount, data_mount = mounts["/app/config"], mounts["/app/data"]
    assert config_mount.endswith(":ro") and not data_mount.endswith(":ro")
    assert data_mount.split(":")[0] in spec["volumes"] and "db-data" in spec["volumes"]
    environment = lukas["environment"]
    assert environment["LUKAS_CONFIG"].startswith("/app/config/") and environment["LUKAS_DATA_DIR"] == "/app/data"
    settings = load_settings(env={k: str(v) for k, v in environment.items() if "${" not in str(v)})
    assert settings.data_dir == Path("/app/data")  # kept pictures go to the volume, not the read-only config


def test_socket_mode_and_every_variable_in_env_example() -> None:
    example = env_example_names()
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPENAI_API_KEY", "POSTGRES_PASSWORD"} <= example
    text = (ROOT / ".env.example").read_text()
    assert re.search(r"^SLACK_APP_TOKEN=xapp-", text, flags=re.MULTILINE)  # Socket Mode by default
    compose_text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    assert used <= example, f"compose uses variables .env.example does not list: {used - example}"
    # every variable the code and config.yml read is listed (tests/helpers' list is what the bot reads)
    from tests.helpers import LUKAS_ENV_VARS

    assert set(LUKAS_ENV_VARS) <= example, set(LUKAS_ENV_VARS) - example
    config_vars = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "config.yml").read_text())) - {"VAR", "SOME_API_KEY"}
    assert config_vars <= example, config_vars - example
    readme = (ROOT / "README.md").read_text() + (ROOT / "docs" / "quickstart.md").read_text()
    assert "docker compose up" in readme and ".env.example" in readme


def test_dockerfile_healthcheck_polls_healthz_in_both_modes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = dockerfile[dockerfile.index("HEALTHCHECK") :].split("\n\n")[0]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].replace("\\\n", "").strip())
    script = command[-1]
    assert "/healthz" in script and "SLACK_APP_TOKEN" not in script  # no Socket Mode shortcut any more
    assert "LUKAS_DATA_DIR=/app/data" in dockerfile and 'VOLUME ["/app/data"]' in dockerfile
