"""Issue 18: `lukas config check` says whether each chat model can be used, `lukas config extras` says what to
install, `lukas run` and live reloads refuse a provider whose SDK is missing.

"Not installed" is real here: either the SDK is absent from this virtualenv (mistral, gemini, groq unless the
`all` extra is installed), or its import is blocked in the `lukas` subprocess by a meta-path finder (ollama,
mistral, ...), which is what Python sees when the package was never installed.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.admin.reload_logic import REFUSED
from bot.config import provider_check_logic as logic
from bot.config.loader import parse_config
from bot.llm.provider_probe import check_chain, known_providers
from tests.harness import REPO_CONFIG, running_lukas
from tests.helpers import clean_env, run_lukas
from tests.standins.slack_api import SlackStandIn

BASE = yaml.safe_load(REPO_CONFIG.read_text())
PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
EXTRAS = list(PYPROJECT["project"]["optional-dependencies"])

# provider -> (the SDK's top-level module, the key variable any-llm reads or None, a model name)
PROVIDERS: dict[str, tuple[str, str | None, str]] = {
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY", "claude-sonnet-4-5"),
    "mistral": ("mistralai", "MISTRAL_API_KEY", "mistral-small-latest"),
    "gemini": ("google.genai", "GEMINI_API_KEY", "gemini-2.5-flash"),
    "groq": ("groq", "GROQ_API_KEY", "llama-3.3-70b-versatile"),
    "ollama": ("ollama", None, "llama3.2"),
}

BLOCKER = """
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {top!r} or name.startswith({top!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
from bot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def lukas_without(top_module: str, *args: str, env: dict[str, str]) -> Any:
    """`lukas ARGS` in a subprocess where importing `top_module` fails as if it was never installed."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(top=top_module), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_file(tmp_path: Path, **sections: Any) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({**BASE, **sections}, allow_unicode=True))
    return path


def one_provider(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"main": {"provider": provider, "model": model, "context_window": 32_000, **extra}},
        "chat_chain": ["main"],
    }


# ----- the extras match any-llm's


def test_every_provider_extra_pulls_any_llms_extra_of_the_same_name() -> None:
    any_llm_extras = set(metadata.metadata("any-llm-sdk").get_all("Provides-Extra") or [])
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        if extra == "dev":
            continue
        (requirement,) = requirements
        assert requirement.startswith("any-llm-sdk["), (extra, requirement)
        named = requirement.split("[", 1)[1].split("]", 1)[0].split(",")
        assert set(named) <= any_llm_extras, (extra, named)
        if extra not in ("all", "google"):
            assert named == [extra]
    for needed in ("anthropic", "mistral", "gemini", "google", "groq", "ollama", "all"):
        assert needed in EXTRAS
    all_named = PYPROJECT["project"]["optional-dependencies"]["all"][0].split("[", 1)[1].split("]", 1)[0].split(",")
    assert set(all_named) == set(EXTRAS) - {"all", "dev", "google"}


# ----- pure decisions


def test_needed_extras_follow_the_chat_chain_not_the_unused_providers() -> None:
    raw = {
        "llm": {"provider": "openai"},
        "providers": {
            "cloud": {"provider": "mistral"},
            "local": {"provider": "ollama"},
            "spare": {"provider": "groq"},  # defined but not in the chain
            "compat": {"provider": "openai"},
        },
        "chat_chain": ["local", "cloud", "compat"],
    }
    assert logic.needed_extras(raw_config=raw, extras=EXTRAS) == ["ollama", "mistral"]
    assert logic.needed_extras(raw_config={**raw, "chat_chain": []}, extras=EXTRAS) == ["mistral", "ollama", "groq"]
    assert logic.needed_extras(raw_config={"llm": {"provider": "anthropic"}}, extras=EXTRAS) == ["anthropic"]
    assert logic.needed_extras(raw_config={}, extras=EXTRAS) == []  # openai: the base install
    assert logic.needed_extras(raw_config={"llm": {"provider": "deepseek"}}, extras=EXTRAS) == []


def test_findings_name_the_variable_never_the_value_and_warn_about_unknown_cost() -> None:
    link = logic.ChainLink("providers.m", "mistral", "mistral-small-latest", False, False, 32_000)
    secret = "sk-mistral-THIS-MUST-NOT-SHOW"
    states = {
        env_value: logic.key_state(
            needs_key=True, key_variable="MISTRAL_API_KEY", provider="mistral", own_api_key=False, env=env
        )
        for env_value, env in [("unset", {}), ("empty", {"MISTRAL_API_KEY": " "}), ("set", {"MISTRAL_API_KEY": secret})]
    }
    assert states == {"unset": "unset", "empty": "empty", "set": "set"}
    found = logic.provider_findings(
        link=link,
        facts=logic.ProviderFacts(known=True, key_variable="MISTRAL_API_KEY", key_state="empty"),
        known_providers=["mistral"],
        extras=EXTRAS,
        context_budget_tokens=4000,
        max_tokens=150,
    )
    kinds = [(f.level, f.kind) for f in found]
    assert kinds == [("error", "api_key"), ("warning", "price")]
    assert "MISTRAL_API_KEY is set but empty" in found[0].text
    assert "cost will be shown as unknown (not $0)" in found[1].text
    assert not any(logic.blocks_start(f) for f in found)  # a key problem does not stop `lukas run`


def test_a_window_smaller_than_the_budget_is_a_warning() -> None:
    link = logic.ChainLink("providers.small", "ollama", "tiny", False, True, 2048)
    found = logic.provider_findings(
        link=link,
        facts=logic.ProviderFacts(known=True, key_state="not_needed"),
        known_providers=["ollama"],
        extras=EXTRAS,
        context_budget_tokens=4000,
        max_tokens=150,
    )
    assert [(f.level, f.kind) for f in found] == [("ok", "ok"), ("warning", "context_window")]
    assert "(4150)" in found[1].text


# ----- `lukas config check` as an admin runs it, each provider with and without its package


# anthropic cannot be missing: any-llm itself imports the anthropic SDK (it is in any-llm-sdk's base install, and
# any-llm's `anthropic` extra adds nothing), so it is only checked "with" below.
@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "anthropic"])
def test_config_check_without_the_providers_package_names_it_and_the_install_command(
    tmp_path: Path, provider: str
) -> None:
    module, variable, model = PROVIDERS[provider]
    path = config_file(tmp_path, **one_provider(provider, model, price={"input": 1, "output": 2}))
    env = clean_env(**({variable: "k-test"} if variable else {}))
    result = lukas_without(module.split(".")[0], "config", "check", str(path), env=env)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert f"providers.main ({provider}:{model}): the {provider} provider's package is not installed" in result.stderr
    assert f"pip install 'lukas-the-bear[{provider}]'" in result.stderr
    assert f"--build-arg LUKAS_EXTRAS={provider}" in result.stderr


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_config_check_with_the_providers_package_is_ok_or_names_the_missing_key(tmp_path: Path, provider: str) -> None:
    module, variable, model = PROVIDERS[provider]
    if not installed(module):
        pytest.skip(f"{module} is not installed in this environment (install the `all` extra to check it)")
    path = config_file(tmp_path, **one_provider(provider, model, price={"input": 1, "output": 2}))
    secret = "k-test-SECRET-VALUE-123"
    result = run_lukas("config", "check", str(path), env=clean_env(**({variable: secret} if variable else {})))
    assert result.returncode == 0, result.stderr
    key = f"{variable} set" if variable else "no key needed"
    assert f"providers.main ({provider}:{model}): installed, {key}, 32000-token window" in result.stdout
    assert secret not in result.stdout + result.stderr
    if variable:
        # Issue 22: a key missing from this machine is the environment's business, not the file's: a warning
        # (the pre-commit hook and CI have no keys); `--env` checks the environment as `lukas run` does.
        missing_key = run_lukas("config", "check", str(path), env=clean_env())
        assert missing_key.returncode == 0, missing_key.stderr
        assert f"warning: providers.main ({provider}:{model}): {variable} is not set" in missing_key.stderr
        env_checked = run_lukas(
            "config", "check", "--env", str(path), env=clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
        )
        assert env_checked.returncode == 1
        assert f"{variable} is not set: {provider} needs an API key" in env_checked.stderr
        assert "warning:" not in env_checked.stderr


def test_config_check_lists_known_providers_for_an_unknown_name(tmp_path: Path) -> None:
    path = config_file(tmp_path, **one_provider("mistrall", "m", price={"input": 0, "output": 0}))
    result = run_lukas("config", "check", str(path))
    assert result.returncode == 1
    assert "providers.main (mistrall:m): any-llm has no provider 'mistrall'. Known providers: " in result.stderr
    for name in ("anthropic", "mistral", "ollama", "openai"):
        assert name in result.stderr.split("Known providers: ", 1)[1]


def test_config_check_warns_about_an_unpriced_model_but_passes(tmp_path: Path) -> None:
    path = config_file(tmp_path, **one_provider("ollama", "llama3.2"))
    result = run_lukas("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "warning: providers.main (ollama:llama3.2): model 'llama3.2' has no price" in result.stderr
    assert "cost will be shown as unknown (not $0)" in result.stderr


def test_probe_sees_a_provider_without_its_sdk_in_this_environment() -> None:
    # mistralai is not part of the dev install: the real "never installed" case, no blocking involved.
    if installed("mistralai"):
        pytest.skip("mistralai is installed here")
    config = parse_config(yaml.safe_dump({**BASE, **one_provider("mistral", "mistral-small-latest")}), env={})
    (finding, *_rest) = check_chain(config, env={"MISTRAL_API_KEY": "x"})
    assert finding.kind == "missing_package" and "mistralai" in finding.text
    assert "mistral" in known_providers()


# ----- `lukas config extras`: what ./scripts/run and the Dockerfile install


def test_config_extras_reads_the_config_without_any_key_set(tmp_path: Path) -> None:
    chain = {
        "providers": {
            "cloud": {"provider": "mistral", "model": "m", "context_window": 32000, "api_key": "${MISTRAL_API_KEY}"},
            "local": {"provider": "ollama", "model": "llama3.2", "context_window": 8000},
        },
        "chat_chain": ["cloud", "local"],
    }
    path = config_file(tmp_path, **chain)
    result = run_lukas("config", "extras", str(path), env=clean_env())  # MISTRAL_API_KEY unset: install time
    assert (result.returncode, result.stdout) == (0, "mistral ollama\n"), result.stderr
    missing = run_lukas("config", "extras", "--missing", str(path), env=clean_env())
    expected = [e for e, module in (("mistral", "mistralai"), ("ollama", "ollama")) if not installed(module)]
    assert missing.stdout == " ".join(expected) + "\n"
    blocked = lukas_without("ollama", "config", "extras", "--missing", str(path), env=clean_env())
    assert "ollama" in blocked.stdout.split()
    shipped = run_lukas("config", "extras", str(REPO_CONFIG), env=clean_env())
    assert shipped.stdout == "\n"  # the shipped config uses OpenAI: nothing beyond the base install


# ----- `lukas run` and live reloads refuse a provider that cannot be built


async def test_lukas_run_refuses_a_missing_package_before_touching_slack(tmp_path: Path) -> None:
    path = config_file(tmp_path, **one_provider("ollama", "llama3.2", price={"input": 0, "output": 0}))
    async with SlackStandIn() as slack:
        env = clean_env(
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET="s",
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'lukas.db'}",
            LUKAS_CONFIG=str(path),
            PORT="1",
        )
        import asyncio

        result = await asyncio.to_thread(lukas_without, "ollama", "run", env=env)
        assert result.returncode == 1
        assert "the ollama provider's package is not installed" in result.stderr
        assert "pip install 'lukas-the-bear[ollama]'" in result.stderr
        assert "Traceback" not in result.stderr
        assert slack.calls == []  # not even auth.test
    assert not (tmp_path / "lukas.db").exists()  # nor the database


async def test_a_reload_naming_an_uninstalled_provider_is_refused(tmp_path: Path, database_url: str) -> None:
    if installed("mistralai"):
        pytest.skip("mistralai is installed here")
    async with running_lukas(tmp_path, database_url) as h:
        path = h.lukas.config.file
        before = h.lukas.config.current
        raw = yaml.safe_load(path.read_text())
        raw.update(one_provider("mistral", "mistral-small-latest", api_key="k"))
        path.write_text(yaml.safe_dump(raw))
        outcome = h.lukas.watcher.reload_now()
        assert outcome.status == REFUSED
        assert any("the mistral provider's package is not installed" in p for p in outcome.problems)
        assert h.lukas.config.current is before


def test_every_block_of_choosing_a_model_in_the_quickstart_is_a_valid_config() -> None:
    quickstart = (Path(__file__).resolve().parents[2] / "docs" / "quickstart.md").read_text()
    section = quickstart.split("## Choosing a model", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]
    assert len(blocks) >= 8
    seen: set[str] = set()
    defined: dict[str, Any] = {}
    for block in blocks:
        part = yaml.safe_load(block)
        defined.update(part.get("providers", {}))
        if "chat_chain" in part and not set(part["chat_chain"]) <= set(part.get("providers", {})):
            part["providers"] = defined  # the mixing example uses providers defined above
        config = parse_config(yaml.safe_dump({**BASE, **part}), env={})
        for link in logic.chain_links(config):
            assert link.provider in known_providers(), link
            assert link.priced, link
            seen.add(link.provider)
    assert {"openai", "anthropic", "mistral", "gemini", "groq", "ollama"} <= seen
