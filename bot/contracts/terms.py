"""Collect banned terms from config.yml and the optional file, refusing a bad file with a ConfigError."""

from __future__ import annotations

from pathlib import Path

from bot.config.contracts_schema import ContractsConfig
from bot.contracts.normalise import term_problem
from bot.errors import ConfigError

MAX_FILE_BYTES = 5_000_000
FIELD = "contracts.banned_terms_file"


def parse_terms_file(text: str, *, field: str = FIELD) -> tuple[list[str], list[str]]:
    """Terms from a file's text (one per line, `#` comments, blanks ignored) and problems by line number."""
    terms: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        term = line.strip()
        if not term or term.startswith("#"):
            continue
        problem = term_problem(term)
        if problem:
            problems.append(f"{field}: line {number} {problem}")
        else:
            terms.append(term)
    return terms, problems


def load_banned_terms(config: ContractsConfig, *, base_dir: Path) -> list[str]:
    """config.banned_terms plus the file's terms; a relative file path is resolved against base_dir."""
    terms = list(config.banned_terms)
    if not config.banned_terms_file:
        return terms
    path = Path(config.banned_terms_file).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    shown = config.banned_terms_file
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError([f"{FIELD}: {shown!r} is larger than {MAX_FILE_BYTES // 1_000_000} MB"])
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([f"{FIELD}: cannot read {shown!r}: {reason} ({path})"]) from None
    if b"\x00" in data:
        raise ConfigError([f"{FIELD}: {shown!r} is not a text file (one term per line)"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{FIELD}: {shown!r} is not UTF-8 text (byte {exc.start})"]) from None
    file_terms, problems = parse_terms_file(text)
    if problems:
        raise ConfigError(
            problems[:10] + ([f"{FIELD}: ... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        )
    return terms + file_terms
