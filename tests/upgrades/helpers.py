"""Revisions derived from the migration files (never hard-coded: new migrations arrive all the time), and a copy of
this code's migrations without the newest one: "the Lukas one release older", as far as the schema goes."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from bot.store import migrate
from tests.harness import deep_merge, envelope, message_event, sign
from tests.helpers import REPO_ROOT, clean_env, free_port, stop_process


def newest_and_previous() -> tuple[str, str]:
    chain = migrate.migration_chain()
    head = migrate.head_revision()
    assert chain is not None and head is not None, "the migrations are not one plain chain"
    previous = chain[head]
    assert previous is not None, "only one migration: nothing to upgrade across"
    return head, previous


def migration_file(revision: str) -> Path:
    for path in (migrate.migrations_dir() / "versions").glob("*.py"):
        if migrate._module_constants(path, ("revision",)).get("revision") == revision:
            return path
    raise AssertionError(f"no migration file has revision {revision!r}")


def migrations_without_newest(folder: Path) -> Path:
    """A copy of the migrations folder minus the newest migration (point migrate.migrations_dir at it)."""
    head, _ = newest_and_previous()
    copy = folder / "migrations"
    shutil.copytree(migrate.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / migration_file(head).name).unlink()
    return copy


# ----- "the previous release" from git history, and `lukas run` processes of either version


_VERSIONS = "migrations/versions"
START_SECONDS = 120  # a cold start (imports, a migration in a child) on a busy 2-core machine


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False)


def _migrations_in(sources: list[str]) -> dict[str, tuple[object, str]]:
    """revision -> (down_revision, what its upgrade() does). The steps matter: ids were re-used when branches were
    merged, so an equal id alone does not mean the same migration."""
    chain: dict[str, tuple[object, str]] = {}
    for source in sources:
        tree = ast.parse(source)
        values = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant)
            for target in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets)
            if isinstance(target, ast.Name)
        }
        upgrade = [ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
        if isinstance(values.get("revision"), str):
            chain[str(values["revision"])] = (values.get("down_revision"), "".join(upgrade))
    return chain


def _migrations_at(tree: str) -> dict[str, tuple[object, str]]:
    names = _git("ls-tree", "--name-only", tree).stdout.split()
    return _migrations_in([_git("show", f"{tree}:{name}").stdout for name in names if name.endswith(".py")])


def previous_release() -> tuple[str, str] | None:
    """(commit, its newest revision): the newest first-parent ancestor whose migrations are an older part of
    today's chain, step for step. None without git history. Derived, not hard-coded: it moves with every new
    migration (also when the lead re-chains them at a merge)."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        return None
    today = _migrations_in([path.read_text() for path in (migrate.migrations_dir() / "versions").glob("*.py")])
    head = migrate.head_revision()
    assert head is not None and head in today
    commits = _git("rev-list", "--first-parent", "HEAD").stdout.split()
    query = "".join(f"{commit}:{_VERSIONS}\n" for commit in commits)
    found = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "cat-file", "--batch-check"], input=query, capture_output=True, text=True
    ).stdout.splitlines()
    seen: dict[str, bool] = {}  # most commits share their migrations folder with the one before
    for commit, line in zip(commits, found, strict=True):
        tree = line.split()[0]
        if line.endswith("missing") or tree in seen:
            continue
        chain = _migrations_at(tree)
        seen[tree] = bool(chain) and head not in chain and chain.items() <= today.items()
        if seen[tree]:
            downs = {down for down, _ in chain.values()}
            return commit, (set(chain) - downs).pop()
    return None


def unpack_release(commit: str, folder: Path) -> Path:
    """The release's `bot` package (with its migrations as bot.migrations, as a wheel installs them) in folder."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "bot", "migrations", "config.yml"],
        capture_output=True,
        check=True,
    )
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "migrations").rename(folder / "bot" / "migrations")
    return folder


def release_config(tree: Path, path: Path, *, llm_base_url: str) -> Path:
    """That release's own config.yml (a newer one may hold keys it refuses), pointed at the OpenAI stand-in."""
    raw = yaml.safe_load((tree / "config.yml").read_text())
    raw = deep_merge(raw, {"llm": {"api_base": llm_base_url}, "logging": {"level": "WARNING"}})
    if "enabled" in raw.get("images", {}):
        raw["images"]["enabled"] = False
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


@dataclass
class RunningLukas:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    async def dm(self, http: aiohttp.ClientSession, *, channel: str, text: str) -> None:
        body = json.dumps(envelope(message_event(text=text, channel=channel))).encode()
        async with http.post(f"{self.url}/slack/events", data=body, headers=sign(body)) as response:
            assert response.status == 200, await response.text()


def lukas_command(tree: Path | None, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` from a release tree (None: today's code)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=_env_for(tree, env),
        cwd=tree or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env_for(tree: Path | None, env: dict[str, str]) -> dict[str, str]:
    merged = clean_env(**env)
    if tree is not None:  # the release's bot package first on sys.path, ahead of the editable install
        merged["PYTHONPATH"] = str(tree)
    return merged


@contextlib.asynccontextmanager
async def lukas_run(tree: Path | None, workdir: Path, *args: str, env: dict[str, str]) -> AsyncIterator[RunningLukas]:
    """`lukas run` (HTTP mode) as a process of the given release, until /healthz answers; stopped with SIGTERM."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "lukas.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", *args],
            env=_env_for(tree, {**env, "PORT": str(port)}),
            cwd=tree or workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RunningLukas(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_SECONDS
        async with aiohttp.ClientSession() as http:
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"lukas run exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{running.url}/healthz") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise AssertionError(f"lukas run did not answer /healthz:\n{log.read_text()[-3000:]}")
                await asyncio.sleep(0.05)
        yield running
    finally:
        stop_process(process)
