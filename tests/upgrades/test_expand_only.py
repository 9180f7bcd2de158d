"""Migrations only expand (issue 23, item 7): a step in upgrade() that removes, renames or tightens what the previous
Lukas still uses is refused unless its line says `# contract: <why>` (CONTRIBUTING.md, "Database migrations")."""

from __future__ import annotations

import textwrap

import pytest

from bot.store import migrate
from bot.store.migrate_logic import contract_steps


def test_every_migration_only_expands() -> None:
    problems = []
    files = sorted((migrate.migrations_dir() / "versions").glob("[0-9]*.py"))
    assert len(files) >= 6
    for path in files:
        problems += [step.describe(file=path.name) for step in contract_steps(source=path.read_text())]
    assert problems == []


def migration(body: str) -> str:
    return (
        "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade() -> None:\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n\ndef downgrade() -> None:\n    op.drop_table('anything')  # downgrades may drop\n"
    )


@pytest.mark.parametrize(
    ("body", "call"),
    [
        ("op.drop_table('messages')", "drop_table()"),
        ("with op.batch_alter_table('m') as b:\n    b.drop_column('content')", "drop_column()"),
        ("op.rename_table('a', 'b')", "rename_table()"),
        ("op.alter_column('m', 'c', nullable=False)", "alter_column(nullable=False)"),
        ("op.alter_column('m', 'c', new_column_name='d')", "alter_column(new_column_name=...)"),
        ("op.alter_column('m', 'c', type_=sa.String(8))", "alter_column(type_=...)"),
        (
            "op.add_column('m', sa.Column('c', sa.Integer(), nullable=False))",
            "add_column(nullable=False without server_default)",
        ),
        ("op.create_unique_constraint('u', 'm', ['c'])", "create_unique_constraint()"),
        ("op.create_index('ix', 'm', ['c'], unique=True)", "create_index(unique=True)"),
        ("op.drop_constraint('fk', 'm')", "drop_constraint()"),
        ("op.execute('ALTER TABLE m DROP COLUMN c')", "execute(DROP ...)"),
        ("op.execute(sa.text('alter table m alter c set  not null'))", "execute(SET NOT NULL ...)"),
    ],
)
def test_contract_steps_are_found(body: str, call: str) -> None:
    steps = contract_steps(source=migration(body))
    assert [step.call for step in steps] == [call]
    assert "split it" in steps[0].describe(file="0099_x.py") and "0099_x.py:" in steps[0].describe(file="0099_x.py")


@pytest.mark.parametrize(
    "body",
    [
        "op.drop_table('old')  # contract: unused since 0007 (release 1.4), see CHANGELOG",
        "# contract: the previous release no longer reads this column\nop.drop_column('m', 'c')",
    ],
)
def test_a_marked_contract_step_is_allowed(body: str) -> None:
    assert contract_steps(source=migration(body)) == []


@pytest.mark.parametrize(
    "body",
    [
        "op.create_table('t', sa.Column('id', sa.Integer(), nullable=False))",
        "op.add_column('m', sa.Column('c', sa.Integer(), nullable=True))",
        "op.add_column('m', sa.Column('c', sa.Boolean(), nullable=False, server_default=sa.false()))",
        "op.alter_column('m', 'c', nullable=True)",
        "op.create_index('ix', 'm', ['c'])",
        "op.execute('UPDATE m SET c = 0 WHERE c IS NULL')",
    ],
)
def test_expand_steps_pass(body: str) -> None:
    assert contract_steps(source=migration(body)) == []


def test_a_marker_two_lines_up_does_not_count() -> None:
    body = "# contract: this comment belongs to the line below\nop.create_table('t')\nop.drop_table('x')"
    assert [step.line for step in contract_steps(source=migration(body))] == [8]
