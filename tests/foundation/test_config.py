"""config.yml: the shipped file loads, and every kind of admin mistake is reported with the field it concerns."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.loader import load_config, parse_config, summarize
from bot.errors import ConfigError
from tests.helpers import SHIPPED_CONFIG, clean_env, run_lukas

SHIPPED_TEXT = SHIPPED_CONFIG.read_text(encoding="utf-8")


def edited(old: str, new: str, text: str = SHIPPED_TEXT) -> str:
    """The shipped config with one edit; fails loudly if the shipped file no longer has `old`."""
    assert old in text, f"the shipped config.yml no longer contains {old!r}; update this test"
    return text.replace(old, new, 1)


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=env or {}, source="config.yml")
    assert caught.value.problems, "a ConfigError must list at least one problem"
    return caught.value.problems


# ----- the shipped file


def test_shipped_config_loads_with_the_documented_values() -> None:
    config = load_config(SHIPPED_CONFIG, env={})
    assert config.persona.name == "Lukas"
    assert config.persona.system_prompt.startswith("You are Lukas the Bear")
    assert config.llm.api_base is None  # ${OPENAI_BASE_URL:-} with nothing set means the provider default
    assert config.llm.max_tokens < config.llm.context_budget_tokens
    assert config.images.schedule.cron == "0 10 * * mon"
    assert config.images.schedule.timezone == "Europe/Berlin"
    assert config.retry.chat.attempts == 3 and config.retry.images.attempts == 2
    assert len(config.fallbacks.lines) >= 3
    assert config.database.upgrade_on_start is True


def test_summary_is_short_and_names_the_essentials() -> None:
    lines = summarize(load_config(SHIPPED_CONFIG, env={}))
    text = "\n".join(lines)
    assert 3 <= len(lines) <= 15
    assert "Lukas" in text and "gpt-4.1-mini" in text and "0 10 * * mon" in text


# ----- each kind of broken edit names the field


def test_broken_yaml_names_the_line() -> None:
    problems = problems_of(edited("  name: Lukas\n", "  name: [Lukas\n"))
    assert len(problems) == 1
    assert "not valid YAML" in problems[0]
    assert problems[0].startswith("line ")


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    problems = problems_of(edited("  temperature: 0.7", "  temprature: 0.7"))
    assert problems == ["llm.temprature: unknown setting (did you mean 'temperature'?)"]


def test_unknown_key_inside_a_list_item_and_an_aliased_field() -> None:
    text = edited("quality: low, usd: 0.011}", "quality: low, usdd: 0.011}")
    text = edited("  json: false", "  jsn: false", text)
    problems = problems_of(text)
    assert any(p.startswith("images.prices[0].usdd: unknown setting (did you mean 'usd'?)") for p in problems)
    assert any(p.startswith("logging.jsn: unknown setting (did you mean 'json'?)") for p in problems)


def test_unknown_top_level_section() -> None:
    problems = problems_of(SHIPPED_TEXT + "\npersonna:\n  name: Bob\n")
    assert problems == ["personna: unknown setting (did you mean 'persona'?)"]


def test_wrong_type_names_the_field_and_the_value() -> None:
    problems = problems_of(edited("max_tokens: 150", "max_tokens: lots"))
    assert len(problems) == 1
    assert problems[0].startswith("llm.max_tokens: ")
    assert "'lots'" in problems[0]


def test_bad_cron_is_reported_in_the_admins_words() -> None:
    problems = problems_of(edited('cron: "0 10 * * mon"', 'cron: "every wensday"'))
    assert len(problems) == 1
    assert problems[0].startswith("images.schedule.cron: 'every wensday' is not a cron expression")


def test_undefined_variable_names_the_field_and_the_variable() -> None:
    problems = problems_of(edited("model: gpt-4.1-mini", "model: ${LUKAS_TEST_UNDEFINED_MODEL}"))
    assert len(problems) == 1
    assert problems[0].startswith("llm.model: environment variable LUKAS_TEST_UNDEFINED_MODEL is not set")


def test_variable_with_default_is_substituted() -> None:
    text = edited("model: gpt-4.1-mini", "model: ${LUKAS_TEST_MODEL:-gpt-4o}")
    assert parse_config(text, env={}).llm.model == "gpt-4o"
    assert parse_config(text, env={"LUKAS_TEST_MODEL": "gpt-4.1"}).llm.model == "gpt-4.1"
    # As in the shell (and docker compose), ${VAR:-default} also replaces a variable that is set but empty.
    assert parse_config(text, env={"LUKAS_TEST_MODEL": ""}).llm.model == "gpt-4o"
    shipped = parse_config(SHIPPED_TEXT, env={"OPENAI_BASE_URL": "http://127.0.0.1:9999/v1"})
    assert shipped.llm.api_base == "http://127.0.0.1:9999/v1"


def test_variable_inside_a_longer_string_and_a_number() -> None:
    text = edited("max_tokens: 150", "max_tokens: ${LUKAS_TEST_MAX:-200}")
    text = edited("  name: Lukas\n", "  name: ${LUKAS_TEST_NAME} the Bear\n", text)
    config = parse_config(text, env={"LUKAS_TEST_NAME": "Lukas"})
    assert config.llm.max_tokens == 200
    assert config.persona.name == "Lukas the Bear"


def test_bad_timezone() -> None:
    problems = problems_of(edited("timezone: Europe/Berlin", "timezone: Europe/Berlinn"))
    assert len(problems) == 1
    assert problems[0].startswith("images.schedule.timezone: 'Europe/Berlinn' is not a known time zone")


def test_max_tokens_must_leave_room_in_the_budget() -> None:
    problems = problems_of(edited("max_tokens: 150", "max_tokens: 4000"))
    assert len(problems) == 1
    assert problems[0].startswith("llm: ")
    assert "max_tokens (4000)" in problems[0] and "context_budget_tokens (4000)" in problems[0]


def test_every_problem_is_reported_at_once() -> None:
    text = edited("  temperature: 0.7", "  temperature: 7")
    text = edited("timezone: Europe/Berlin", "timezone: Mars/Olympus", text)
    text = edited("admins: []", 'admins: ["not-an-id"]', text)
    problems = problems_of(text)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == ["llm.temperature", "images.schedule.timezone", "admins"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("llm:\n  model: gpt-4o\n", "persona: required setting is missing"),
    ],
)
def test_empty_or_misshapen_files(text: str, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(text))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yml", env={})
    assert "file not found" in caught.value.problems[0]


# ----- `lukas config check` as an admin runs it


def test_config_check_on_the_shipped_file(tmp_path: Path) -> None:
    result = run_lukas("config", "check", str(SHIPPED_CONFIG), env=clean_env(OPENAI_API_KEY="sk-test"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{SHIPPED_CONFIG}: OK" in result.stdout
    assert "persona: Lukas" in result.stdout
    assert "images: on, cron '0 10 * * mon' (Europe/Berlin)" in result.stdout
    assert result.stderr == ""


def test_config_check_without_the_api_key_passes_with_a_warning_and_fails_with_env(tmp_path: Path) -> None:
    """Issue 22: the pre-commit hook and a CI check of config.yml run where OPENAI_API_KEY is not set."""
    result = run_lukas("config", "check", str(SHIPPED_CONFIG), env=clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{SHIPPED_CONFIG}: OK" in result.stdout
    assert "warning: llm (openai:" in result.stderr and "OPENAI_API_KEY is not set" in result.stderr
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    checked = run_lukas("config", "check", "--env", str(SHIPPED_CONFIG), env=clean_env(**slack), cwd=tmp_path)
    assert checked.returncode == 1
    assert "OPENAI_API_KEY is not set" in checked.stderr and "warning:" not in checked.stderr
    ready = run_lukas(
        "config", "check", "--env", str(SHIPPED_CONFIG), env=clean_env(**slack, OPENAI_API_KEY="sk-test"), cwd=tmp_path
    )
    assert ready.returncode == 0, ready.stderr
    example = run_lukas(
        "config",
        "check",
        "--env",
        str(SHIPPED_CONFIG),
        env=clean_env(**slack, OPENAI_API_KEY="sk-your-openai-key"),
        cwd=tmp_path,
    )
    assert example.returncode == 1
    assert "OPENAI_API_KEY still holds an example value" in example.stderr


def test_config_check_uses_lukas_config_by_default(tmp_path: Path) -> None:
    env = clean_env(LUKAS_CONFIG=str(SHIPPED_CONFIG), OPENAI_API_KEY="sk-test")
    result = run_lukas("config", "check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{SHIPPED_CONFIG}: OK" in result.stdout

    missing = run_lukas("config", "check", cwd=tmp_path)  # no LUKAS_CONFIG, no ./config.yml here
    assert missing.returncode == 1
    assert "config.yml" in missing.stderr and "file not found" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  name: Lukas\n", "  name: [Lukas\n", "not valid YAML"),
        ("  temperature: 0.7", "  temprature: 0.7", "llm.temprature: unknown setting (did you mean 'temperature'?)"),
        ("max_tokens: 150", "max_tokens: lots", "llm.max_tokens: "),
        ('cron: "0 10 * * mon"', 'cron: "every wensday"', "images.schedule.cron: 'every wensday' is not a cron"),
        ("model: gpt-4.1-mini", "model: ${LUKAS_TEST_UNDEFINED}", "llm.model: environment variable LUKAS_TEST_"),
        ("timezone: Europe/Berlin", "timezone: Europe/Berlinn", "images.schedule.timezone: "),
        ("max_tokens: 150", "max_tokens: 9000", "llm: max_tokens (9000) must be smaller"),
    ],
    ids=["yaml", "unknown-key", "wrong-type", "cron", "undefined-var", "timezone", "budget"],
)
def test_config_check_on_broken_copies(tmp_path: Path, old: str, new: str, expected: str) -> None:
    broken = tmp_path / "config.yml"
    broken.write_text(edited(old, new), encoding="utf-8")
    before = broken.read_bytes()
    result = run_lukas("config", "check", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr
    assert f"config error in {broken}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert broken.read_bytes() == before  # check never writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml"]


def test_config_check_prints_every_error(tmp_path: Path) -> None:
    broken = tmp_path / "config.yml"
    text = edited("  temperature: 0.7", "  temprature: 0.7")
    text = edited('cron: "0 10 * * mon"', 'cron: "every wensday"', text)
    broken.write_text(text, encoding="utf-8")
    result = run_lukas("config", "check", str(broken))
    assert result.returncode == 1
    assert "llm.temprature" in result.stderr and "images.schedule.cron" in result.stderr


def test_config_check_never_prints_secrets(tmp_path: Path) -> None:
    secret = "sk-test-THIS-MUST-NOT-LEAK-0123456789"
    config = tmp_path / "config.yml"
    config.write_text(edited("api_base: ${OPENAI_BASE_URL:-}", "api_base: ${LUKAS_TEST_SECRET_BASE}"), encoding="utf-8")
    env = clean_env(
        LUKAS_TEST_SECRET_BASE=f"https://lukas:{secret}@llm.example.org/v1",
        OPENAI_API_KEY=secret,
        SLACK_BOT_TOKEN="xoxb-" + secret,
    )
    result = run_lukas("config", "check", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert "(custom api_base)" in result.stdout
    assert secret not in result.stdout + result.stderr
    assert "llm.example.org" not in result.stdout


def test_no_arguments_prints_help() -> None:
    result = run_lukas()
    assert result.returncode == 2
    for command in ("run", "config", "db"):
        assert command in result.stdout
