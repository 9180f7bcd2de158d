"""Pure decisions about schema revisions: how a database and the running code relate, and which migration steps
would break the Lukas one release older that still runs during a rolling upgrade (the expand/contract rule)."""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

SchemaState = Literal["agree", "new", "behind", "ahead", "unknown"]

# `lukas db upgrade --check` exits with these (1 stays "could not look": unreachable database, bad URL).
CHECK_EXIT_CODES: dict[SchemaState, int] = {"agree": 0, "new": 3, "behind": 3, "ahead": 4, "unknown": 5}

# Steps an older Lukas cannot live with: it still reads and writes what they remove, rename or tighten.
_CONTRACT_CALLS = frozenset(
    {
        "drop_column",
        "drop_table",
        "rename_table",
        "drop_constraint",
        "create_unique_constraint",
        "create_check_constraint",
        "create_foreign_key",
        "create_primary_key",
    }
)
_CONTRACT_SQL = re.compile(r"\b(DROP|RENAME|TRUNCATE|SET\s+NOT\s+NULL)\b", re.IGNORECASE)
CONTRACT_MARKER = "# contract:"


def schema_state(*, database: str | None, head: str | None, known: Collection[str]) -> SchemaState:
    """`database`: alembic_version's revision (None: no tables yet); `head`/`known`: this code's newest and all."""
    if head is None or database == "(several)":
        return "unknown"
    if database is None:
        return "new"
    if database == head:
        return "agree"
    return "behind" if database in known else "ahead"


def describe_state(*, state: SchemaState, database: str | None, head: str | None) -> str:
    """One line for an admin: where things stand and what to do."""
    if state == "agree":
        return f"the database and this Lukas agree (revision {head}): nothing to do"
    if state == "new":
        return f"the database has no Lukas tables yet: `lukas db upgrade` creates them (revision {head})"
    if state == "behind":
        return f"the database ({database}) is behind this Lukas ({head}): run `lukas db upgrade`"
    if state == "ahead":
        return (
            f"the database ({database}) was migrated by a newer Lukas than this one (newest known here: {head}). "
            "This Lukas still runs on it, because migrations only add (docs/quickstart.md, 'Upgrades'); "
            "upgrade it to the version that migrated the database"
        )
    return (
        f"cannot compare the database ({database}) with this Lukas's migrations (several heads or several "
        "recorded revisions); run `alembic heads` and `alembic current` in the repository to see why"
    )


def upgrade_outcome(*, before: str | None, after: str | None) -> str:
    """What `lukas db upgrade` did, said plainly: a new database was created, an old one upgraded, or nothing."""
    if before is None:
        return f"database created (revision {after})"
    if before == after:
        return f"database is up to date (revision {after})"
    return f"database upgraded from revision {before} to {after}"


@dataclass(frozen=True)
class ContractStep:
    line: int
    call: str

    def describe(self, *, file: str) -> str:
        return (
            f"{file}:{self.line}: {self.call} in upgrade() would break the previous Lukas during a rolling "
            f"upgrade; split it (expand now, contract a release later) or mark the line '{CONTRACT_MARKER} <why>'"
        )


def contract_steps(*, source: str) -> list[ContractStep]:
    """Unmarked steps in a migration's upgrade() that remove, rename or tighten something (CONTRIBUTING.md).

    A step is allowed when its line, or the comment line just above it, carries `# contract:` with a reason.
    """
    lines = source.splitlines()
    upgrade = next(
        (node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == "upgrade"),
        None,
    )
    if upgrade is None:
        return []
    steps = []
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        call = _contract_call(node)
        if call is None:
            continue
        marked = any(
            CONTRACT_MARKER in lines[number - 1]
            for number in (node.lineno, node.lineno - 1)
            if 0 < number <= len(lines) and (number == node.lineno or lines[number - 1].lstrip().startswith("#"))
        )
        if not marked:
            steps.append(ContractStep(line=node.lineno, call=call))
    return sorted(steps, key=lambda step: step.line)


def _contract_call(node: ast.Call) -> str | None:
    assert isinstance(node.func, ast.Attribute)
    name = node.func.attr
    keywords = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
    if name in _CONTRACT_CALLS:
        return f"{name}()"
    if name == "alter_column":
        nullable = keywords.get("nullable")
        if isinstance(nullable, ast.Constant) and nullable.value is False:
            return "alter_column(nullable=False)"
        changed = sorted(k for k in ("new_column_name", "type_") if k in keywords)
        return f"alter_column({', '.join(changed)}=...)" if changed else None
    if name == "add_column":
        return _required_new_column(node)
    if name == "create_index":
        unique = keywords.get("unique")
        return "create_index(unique=True)" if isinstance(unique, ast.Constant) and unique.value is True else None
    if name == "execute":
        text = " ".join(
            arg.value for arg in ast.walk(node) if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        )
        found = _CONTRACT_SQL.search(text)
        return f"execute({' '.join(found.group(1).upper().split())} ...)" if found else None
    return None


def _required_new_column(node: ast.Call) -> str | None:
    """add_column(Column(..., nullable=False)) without a server default: an older Lukas's INSERTs would fail."""
    for column in (arg for arg in node.args if isinstance(arg, ast.Call)):
        keywords = {keyword.arg: keyword.value for keyword in column.keywords if keyword.arg}
        nullable = keywords.get("nullable")
        required = isinstance(nullable, ast.Constant) and nullable.value is False
        if required and "server_default" not in keywords:
            return "add_column(nullable=False without server_default)"
    return None
