"""What a new admin touches first: the README's commands, the quickstart, the Slack manifest, the Dockerfile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from aiohttp import web

from tests.helpers import REPO_ROOT, clean_env, free_port

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTART = (REPO_ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found, in_code = set(), False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            found.add(github_anchor(line.lstrip("#")))
    return found


@pytest.mark.parametrize("doc", ["README.md", "docs/quickstart.md", "CONTRIBUTING.md"])
def test_relative_links_and_anchors_resolve(doc: str) -> None:
    path = REPO_ROOT / doc
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(target)
    assert broken == []


def test_readme_gives_the_two_commands_and_the_environment() -> None:
    assert "./scripts/run" in README and "./scripts/test" in README
    for variable in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "DATABASE_URL"):
        assert variable in README
    assert "docs/quickstart.md" in README


def test_the_missing_token_message_points_at_a_real_section() -> None:
    from bot.settings import QUICKSTART as QUICKSTART_PATH

    assert (REPO_ROOT / QUICKSTART_PATH).is_file()
    assert "get-the-tokens" in {anchor.split("-", 1)[-1] for anchor in anchors(QUICKSTART)}


@pytest.mark.parametrize("script", ["scripts/run", "scripts/test", ".ci/run"])
def test_scripts_are_strict_bash(script: str) -> None:
    path = REPO_ROOT / script
    assert os.access(path, os.X_OK), f"{script} must be executable"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_slack_manifest_has_what_lukas_uses() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "slack-manifest.yml").read_text(encoding="utf-8"))
    assert manifest["display_information"]["name"] == "Lukas"
    assert len(manifest["display_information"]["long_description"]) >= 174  # Slack's minimum
    features = manifest["features"]
    assert features["bot_user"]["display_name"] == "Lukas"
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert features["agent_view"]["agent_description"]
    assert all({"title", "message"} <= set(p) for p in features["agent_view"]["suggested_prompts"])
    [command] = features["slash_commands"]
    assert command["command"] == "/lukas" and command["description"] and command["usage_hint"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) >= {
        "app_mentions:read",
        "chat:write",
        "im:history",
        "im:write",
        "channels:history",
        "groups:history",
        "users:read",
        "files:write",
        "commands",
        "assistant:write",
    }
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) >= {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
        "app_home_opened",
    }
    assert settings["socket_mode_enabled"] is True
    assert "interactivity" not in settings  # no buttons: tests/fidelity/test_manifest.py checks scopes both ways
    assert settings["org_deploy_enabled"] is False


def test_dockerfile_shape() -> None:
    assert re.search(r"^FROM python:3\.1[1-9]-slim", DOCKERFILE, re.M)
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 3000$", DOCKERFILE, re.M)
    # Installed from the lock, not editable (the sources are not copied into the final image).
    assert "uv sync --frozen --no-editable" in DOCKERFILE
    assert re.search(r"^COPY pyproject\.toml uv\.lock ", DOCKERFILE, re.M)
    assert re.search(r'^ARG LUKAS_EXTRAS=""$', DOCKERFILE, re.M)
    assert re.search(r'^CMD \["sh", "-c", "lukas db upgrade && exec lukas run"\]$', DOCKERFILE, re.M)
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and "data" in ignored
    for needed in ("pyproject.toml", "uv.lock", "setup.py", "README.md", "bot", "migrations", "config.yml"):
        assert needed not in ignored


def healthcheck_command() -> list[str]:
    match = re.search(r"^\s*CMD (\[.*\])$", DOCKERFILE.split("HEALTHCHECK", 1)[1], re.M)
    assert match, "HEALTHCHECK ... CMD [...] not found"
    command = json.loads(match[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def run_healthcheck(env: dict[str, str]) -> int:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        *healthcheck_command(), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), timeout=20)


async def test_dockerfile_healthcheck_follows_healthz() -> None:
    status = {"code": 200}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": status["code"] == 200}, status=status["code"])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await run_healthcheck(clean_env(PORT=str(port))) == 0
        status["code"] = 503
        assert await run_healthcheck(clean_env(PORT=str(port))) != 0
    finally:
        await runner.cleanup()
    assert await run_healthcheck(clean_env(PORT=str(free_port()))) != 0  # nothing listening
    # Socket Mode serves /healthz too (issue 11): no shortcut that passes without asking it
    assert await run_healthcheck(clean_env(PORT=str(free_port()), SLACK_APP_TOKEN="xapp-1")) != 0


def test_package_data_is_declared() -> None:
    """The wheel needs the migrations and tiktoken files (checked for real by installing it; see README)."""
    from importlib import resources

    versions = resources.files("bot.migrations") / "versions"
    assert any(entry.name.endswith(".py") and entry.name[0].isdigit() for entry in versions.iterdir())
    assert (resources.files("bot.migrations") / "script.py.mako").is_file()
    assert (resources.files("bot.tokens") / "tiktoken_files").is_dir()


def test_tooling_installs_from_the_lock_and_checks_before_commits() -> None:
    venv_script = (REPO_ROOT / "scripts" / "_venv.sh").read_text(encoding="utf-8")
    assert "sync" in venv_script and "--frozen" in venv_script
    assert "[[package]]" in (REPO_ROOT / "uv.lock").read_text(encoding="utf-8")
    assert "mypy" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    entries = [hook["entry"] for repo in hooks["repos"] for hook in repo["hooks"]]
    assert any(entry.endswith("ruff check --force-exclude") for entry in entries)
    assert any(entry.endswith("ruff format --force-exclude") for entry in entries)
    assert any(entry.endswith("lukas config check") for entry in entries)
