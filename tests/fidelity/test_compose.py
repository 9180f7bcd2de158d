"""docker-compose.yml, .env.example and the Dockerfile, checked by structure (no Docker engine runs the suite)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
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


def test_both_replicas_build_the_image_and_compose_v2_is_named() -> None:
    """`--profile replicas up` must not try to pull lukas:latest for lukas-2 (no registry has it) before building."""
    services = compose()["services"]
    assert services["lukas-2"]["build"] == services["lukas"]["build"] == "."
    assert services["lukas-2"]["image"] == services["lukas"]["image"]
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    assert "Compose v2" in header
    quickstart = (ROOT / "docs" / "quickstart.md").read_text()
    docker_section = quickstart[quickstart.index("## Run with Docker") :]
    first_block = docker_section[docker_section.index("```bash") : docker_section.index("```\n", 8)]
    assert first_block.splitlines()[1].startswith("docker compose version")  # the first step checks v2


def test_the_quickstart_config_folder_is_ignored_by_git() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a checkout")

    def ignored(path: str) -> bool:
        return subprocess.run([git, "-C", str(ROOT), "check-ignore", "-q", path], check=False).returncode == 0

    assert ignored("config/config.yml")  # `mkdir -p config && cp config.yml config/` from the quickstart
    assert not ignored("bot/config/loader.py") and not ignored("config.yml")


def test_the_image_user_is_not_a_system_account() -> None:
    """useradd --system warns for uids above SYS_UID_MAX (999); 10001 is a regular account, made without a home."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    commands = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    user_lines = [line for line in commands if "useradd" in line or "groupadd" in line]
    assert len(user_lines) == 2 and all("10001" in line for line in user_lines)
    assert not any("--system" in line or " -r " in line for line in user_lines)
    assert "--no-create-home" in user_lines[1]


def _runtime_closure() -> set[str]:
    """Packages `uv sync --frozen` installs without extras (the image's base), followed through uv.lock."""
    packages = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    seen: set[str] = set()
    todo = [d for d in packages["lukas-the-bear"]["dependencies"]]
    while todo:
        dep = todo.pop()
        package = packages[dep["name"]]
        todo += [d for extra in dep.get("extra", []) for d in package.get("optional-dependencies", {}).get(extra, [])]
        if dep["name"] not in seen:
            seen.add(dep["name"])
            todo += package.get("dependencies", [])
    return seen


def test_the_image_does_not_install_the_dev_extra() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert (
        "--all-extras" not in dockerfile
        and "--extra dev" not in dockerfile
        and "dev" not in re.findall(r'LUKAS_EXTRAS="([^"]*)"', dockerfile)
    )
    runtime = _runtime_closure()
    assert {"slack-bolt", "any-llm-sdk", "sqlalchemy", "alembic"} <= runtime
    assert not {"pytest", "hypothesis", "mypy", "ruff", "psutil"} & runtime
    # anthropic is in the image because any-llm-sdk itself requires it (its message types import it), not via dev
    any_llm = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}["any-llm-sdk"]
    assert "anthropic" in {d["name"] for d in any_llm["dependencies"]}


def _compose_v2() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    result = subprocess.run([docker, "compose", "version", "--short"], capture_output=True, text=True, check=False)
    return (
        result.stdout.strip() if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2") else None
    )


def test_docker_compose_v2_accepts_the_file(tmp_path: Path) -> None:
    """Opt-in by nature: runs only where `docker compose version` reports v2 (not on Debian bookworm's 1.29)."""
    if _compose_v2() is None:
        pytest.skip("needs Docker Compose v2 (`docker compose version`)")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")  # env_file: .env is read from here
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + "\nPOSTGRES_PASSWORD=check-only\n")
    for profile in ([], ["--profile", "replicas"]):
        result = subprocess.run(
            ["docker", "compose", *profile, "config", "-q"], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
