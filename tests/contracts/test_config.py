"""The `contracts:` config section: clear errors naming the field, banned-term files, and config.yml itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, parse_config
from bot.config.contracts_schema import BUILTINS, STAGES, ContractsConfig, ContractSpec
from bot.contracts import ContractEngine, ContractMetrics, Verdict
from bot.contracts.builtins import BUILTIN_FACTORIES
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = """
persona: {system_prompt: "You are Lukas."}
fallbacks: {lines: ["fuzzy"], refusal_lines: ["no"]}
"""


def problems_for(contracts_yaml: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + "contracts:\n" + contracts_yaml, env={})
    return caught.value.problems


def test_every_schema_name_has_an_implementation() -> None:
    assert set(BUILTINS) == set(BUILTIN_FACTORIES)
    assert all(info.stages <= set(STAGES) for info in BUILTINS.values())


def test_repo_config_yml_loads_and_builds_an_engine() -> None:
    config = load_config(ROOT / "config.yml", env={})
    engine = ContractEngine.from_config(config.contracts, base_dir=ROOT, metrics=ContractMetrics())
    assert engine.stages["chat_input"] == ["not_empty", "token_budget", "banned_terms"]
    assert "reply_policy" in engine.stages["chat_output"]
    assert "prompt_length" in engine.stages["image_prompt"]
    assert engine.check_reply("Hello from the woods! 🐻").verdict is Verdict.PASS
    assert engine.check_image_prompt("x" * 4001).verdict is not Verdict.PASS


def test_unknown_contract_name_suggests_the_right_one() -> None:
    assert problems_for("  chat_output:\n    - {name: reply_lenght}\n") == [
        "contracts.chat_output[0].name: unknown contract 'reply_lenght' (did you mean 'reply_length'? known: "
        "not_empty, prompt_length, token_budget, banned_terms, reply_length, reply_policy)"
    ]


def test_contract_in_the_wrong_stage() -> None:
    [problem] = problems_for("  chat_input:\n    - {name: not_empty}\n    - {name: reply_length}\n")
    assert problem.startswith("contracts.chat_input[1]: reply_length cannot run in chat_input")
    assert problem.endswith("allowed in: chat_output)")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{name: reply_length, settings: {max_chars: 0}}",
            "contracts.chat_output[0]: reply_length setting 'max_chars': Input should be greater than or equal to 1 "
            "(got 0)",
        ),
        (
            "{name: reply_length, settings: {maxchars: 10}}",
            "contracts.chat_output[0]: reply_length has no setting 'maxchars' (did you mean 'max_chars'?)",
        ),
        (
            "{name: reply_length, settings: {min_chars: 50, max_chars: 10}}",
            "contracts.chat_output[0]: reply_length settings: min_chars (50) must not exceed max_chars (10)",
        ),
        (
            "{name: not_empty, settings: {strict: true}}",
            "contracts.chat_output[0]: not_empty takes no settings (remove settings.strict)",
        ),
        (
            "{name: reply_policy, autofix: false}",
            "contracts.chat_output[0].autofix: unknown setting (did you mean 'auto_fix'?)",
        ),
    ],
)
def test_settings_errors_read_well(entry: str, expected: str) -> None:
    assert problems_for(f"  chat_output:\n    - {entry}\n") == [expected]


def test_a_contract_listed_twice() -> None:
    assert problems_for("  image_prompt:\n    - {name: banned_terms}\n    - {name: banned_terms}\n") == [
        "contracts.image_prompt: banned_terms is listed twice; each contract runs once per stage"
    ]


def test_unusable_inline_banned_term() -> None:
    assert problems_for("  banned_terms: [ok, '!!!']\n") == [
        "contracts.banned_terms: entry 2 '!!!' has no letters or digits"
    ]


def test_breaker_settings_are_validated() -> None:
    [problem] = problems_for("  breaker: {error_threshold: 0}\n")
    assert problem.startswith("contracts.breaker.error_threshold:")


def test_code_may_pass_spec_objects() -> None:
    config = ContractsConfig(chat_output=[ContractSpec(name="reply_length", settings={"max_chars": 99})])
    assert config.chat_output[0].parsed_settings().max_chars == 99
    with pytest.raises(ValueError, match="cannot run in chat_input"):
        ContractsConfig(chat_input=[ContractSpec(name="reply_policy")])


def test_omitted_stage_lists_use_the_recommended_checks() -> None:
    config = ContractsConfig()
    assert [spec.name for spec in config.chat_input] == ["not_empty", "token_budget", "banned_terms"]
    assert config.chat_input[2].auto_fix is False
    assert ContractsConfig(chat_input=[]).chat_input == []


def test_disabled_contracts_do_not_run(tmp_path: Path) -> None:
    config = ContractsConfig(chat_output=[{"name": "not_empty", "enabled": False}])
    engine = ContractEngine.from_config(config, base_dir=tmp_path, metrics=ContractMetrics())
    assert engine.stages["chat_output"] == []
    assert engine.check_reply("").verdict is Verdict.PASS


# --- banned-terms file -----------------------------------------------------------------------


def engine_for(tmp_path: Path, **section) -> ContractEngine:
    return ContractEngine.from_config(ContractsConfig(**section), base_dir=tmp_path, metrics=ContractMetrics())


def test_banned_terms_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "terms.txt").write_text("# team list\n\nGrizzlyhate\n  evil plan  \n", encoding="utf-8")
    engine = engine_for(tmp_path, banned_terms=["inline"], banned_terms_file="terms.txt")
    assert engine.check_image_prompt("an EVIL plan").verdict is Verdict.VIOLATION
    assert engine.check_image_prompt("g.r.i.z.z.l.y.h.a.t.e").verdict is Verdict.VIOLATION
    assert engine.check_image_prompt("inline").verdict is Verdict.VIOLATION
    assert engine.check_image_prompt("team list").verdict is Verdict.PASS  # comments are not terms


def test_missing_banned_terms_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        engine_for(tmp_path, banned_terms_file="nope.txt")
    [problem] = caught.value.problems
    assert problem.startswith("contracts.banned_terms_file: cannot read 'nope.txt': No such file or directory")


def test_banned_terms_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match=r"contracts\.banned_terms_file: cannot read 'dir'"):
        engine_for(tmp_path, banned_terms_file="dir")


def test_banned_terms_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "terms.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        engine_for(tmp_path, banned_terms_file="terms.txt")
    assert caught.value.problems == ["contracts.banned_terms_file: 'terms.txt' is not UTF-8 text (byte 3)"]


def test_banned_terms_file_binary(tmp_path: Path) -> None:
    (tmp_path / "terms.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ConfigError, match="is not a text file"):
        engine_for(tmp_path, banned_terms_file="terms.bin")


def test_banned_terms_file_bad_lines_are_numbered(tmp_path: Path) -> None:
    (tmp_path / "terms.txt").write_text("fine\n---\nalso fine\n" + "x" * 300 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        engine_for(tmp_path, banned_terms_file="terms.txt")
    assert caught.value.problems == [
        "contracts.banned_terms_file: line 2 '---' has no letters or digits",
        "contracts.banned_terms_file: line 4 is longer than 200 characters",
    ]


def test_banned_terms_file_with_bom_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "terms.txt").write_bytes("\ufeffbadword\r\nother\r\n".encode())
    engine = engine_for(tmp_path, banned_terms_file=str(tmp_path / "terms.txt"))  # absolute path
    assert engine.check_reply("such a badword").verdict is Verdict.VIOLATION
    assert engine.check_reply("the other one").verdict is Verdict.VIOLATION


def test_blank_banned_terms_file_means_none(tmp_path: Path) -> None:
    assert ContractsConfig(banned_terms_file="  ").banned_terms_file is None
