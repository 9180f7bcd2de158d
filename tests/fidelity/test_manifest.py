"""slack-manifest.yml matches the code, both ways: every Web API method the code calls has its scope, every event
it listens to is subscribed, and nothing is requested or subscribed that no code uses. docs/quickstart.md
explains each scope, one line each, and lists the same events."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "slack-manifest.yml"
QUICKSTART = ROOT / "docs" / "quickstart.md"

# Web API method -> the bot scope it needs (None: no scope). From Slack's method reference pages.
METHOD_SCOPES: dict[str, str | tuple[str, ...] | None] = {  # a tuple: one scope per kind of channel
    "auth.test": None,  # checked before serving (bot/slack/auth.py); Bolt reuses the answer
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "users.info": "users:read",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
    "assistant.threads.setStatus": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
    "conversations.info": ("channels:read", "groups:read"),  # is Lukas in the channels config.yml has rules for
    "views.publish": None,  # the Home tab needs no scope
    # the threads Lukas is called into, and his own reply found by its metadata after a post whose outcome was
    # unknown (bot/slack/replies.py: in a thread, or in a DM's main timeline)
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "conversations.history": ("channels:history", "groups:history", "im:history"),
}
# slack-sdk / Bolt helpers -> the Web API methods they call
HELPERS: dict[str, tuple[str, ...]] = {
    "chat_stream": ("chat.startStream", "chat.appendStream", "chat.stopStream"),
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
    "AsyncSetStatus": ("assistant.threads.setStatus",),
    "AsyncSetSuggestedPrompts": ("assistant.threads.setSuggestedPrompts",),
}
# Bolt event listener -> the subscriptions that deliver it, and the scope each subscription needs
EVENT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "message": ("message.im", "message.channels", "message.groups"),
    "app_mention": ("app_mention",),
    "app_home_opened": ("app_home_opened",),
    "assistant_thread_started": ("assistant_thread_started",),
}
SUBSCRIPTION_SCOPES: dict[str, str | None] = {
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "app_mention": "app_mentions:read",
    "app_home_opened": None,
    "assistant_thread_started": "assistant:write",
}
INTERACTIVE_LISTENERS = {"action", "view", "shortcut", "options", "block_action", "view_submission"}
_CLIENT_METHODS = {name for name in dir(AsyncWebClient) if not name.startswith("_")}


@dataclass
class CodeUse:
    methods: set[str] = field(default_factory=lambda: {"auth.test"})
    events: set[str] = field(default_factory=set)
    commands: set[str] = field(default_factory=set)
    interactive: set[str] = field(default_factory=set)


def _api_name(client_method: str) -> str:
    return client_method.replace("_", ".")


def collect(sources: dict[str, str]) -> CodeUse:
    """What the code calls and listens to, read from its syntax tree (not from running it)."""
    use = CodeUse()
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source, filename=name)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            literal = (
                node.args[0].value
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                else None
            )
            if called in HELPERS:
                use.methods.update(HELPERS[called])
            elif isinstance(func, ast.Attribute) and called in _CLIENT_METHODS and called != "api_call":
                use.methods.add(_api_name(called))
            if isinstance(func, ast.Attribute) and called == "event" and literal:
                use.events.add(literal)
            if isinstance(func, ast.Attribute) and called == "command" and literal:
                use.commands.add(literal)
            if isinstance(func, ast.Attribute) and called in INTERACTIVE_LISTENERS and literal is not None:
                use.interactive.add(f"{called}({literal!r})")
            if isinstance(func, ast.Attribute) and called == "api_call" and literal:
                use.methods.add(literal)
    return use


def bot_sources() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in sorted((ROOT / "bot").rglob("*.py"))}


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def problems(use: CodeUse, spec: dict) -> list[str]:
    """Everything that does not match between what the code uses and what the manifest grants."""
    found: list[str] = []
    scopes = set(spec["oauth_config"]["scopes"]["bot"])
    settings = spec["settings"]
    subscribed = set(settings["event_subscriptions"]["bot_events"])
    unknown = sorted(m for m in use.methods if m not in METHOD_SCOPES)
    found += [f"the code calls {m}: add its scope to METHOD_SCOPES in this test" for m in unknown]
    needed: set[str] = set()
    for method in use.methods:
        scope = METHOD_SCOPES.get(method)
        needed |= {scope} if isinstance(scope, str) else set(scope or ())
    for event in sorted(use.events):
        if event not in EVENT_SUBSCRIPTIONS:
            found.append(f"the code listens to {event}: add it to EVENT_SUBSCRIPTIONS in this test")
            continue
        deliver = set(EVENT_SUBSCRIPTIONS[event])
        if not deliver & subscribed:
            found.append(f"listens to {event} but the manifest subscribes none of {sorted(deliver)}")
        needed |= {SUBSCRIPTION_SCOPES[s] for s in deliver & subscribed if SUBSCRIPTION_SCOPES[s]}
    if use.commands:
        needed.add("commands")
    found += [f"the code needs scope {s}, which the manifest lacks" for s in sorted(needed - scopes)]
    found += [f"the manifest requests {s}, which nothing uses" for s in sorted(scopes - needed)]
    usable = {s for event in use.events for s in EVENT_SUBSCRIPTIONS.get(event, ())}
    found += [f"the manifest subscribes {s}, which nothing listens to" for s in sorted(subscribed - usable)]
    declared = {c["command"] for c in spec.get("features", {}).get("slash_commands", [])}
    found += [f"slash command {c} is handled but not declared" for c in sorted(use.commands - declared)]
    found += [f"slash command {c} is declared but not handled" for c in sorted(declared - use.commands)]
    interactivity = bool((settings.get("interactivity") or {}).get("is_enabled"))
    if interactivity and not use.interactive:
        found.append("interactivity is enabled but nothing listens to actions, views or shortcuts")
    if use.interactive and not interactivity:
        found.append(f"{sorted(use.interactive)} need interactivity enabled")
    return found


def test_the_collector_sees_what_the_code_calls() -> None:
    use = collect(bot_sources())
    # a blind collector would pass the comparison vacuously: these calls are known to be in the code
    assert {"chat.postMessage", "chat.update", "chat.appendStream", "users.info", "conversations.open"} <= use.methods
    assert {"files.completeUploadExternal", "assistant.threads.setStatus"} <= use.methods
    assert use.events == {"message", "app_mention", "app_home_opened", "assistant_thread_started"}
    assert use.commands == {"/lukas"} and not use.interactive
    assert "files.info" not in use.methods  # decided: no files:read (it would let Lukas read every file)


def test_manifest_matches_the_code_both_ways() -> None:
    assert problems(collect(bot_sources()), manifest()) == []


def test_the_check_fails_on_drift() -> None:
    spec = manifest()
    drifted_code = {
        **bot_sources(),
        "extra.py": "async def f(client, app):\n    await client.files_info(file='F1')\n    app.event('team_join')\n",
    }
    found = problems(collect(drifted_code), spec)
    assert "the code needs scope files:read, which the manifest lacks" in found
    assert any("team_join" in line for line in found)
    spec["oauth_config"]["scopes"]["bot"].append("im:read")
    spec["settings"]["event_subscriptions"]["bot_events"].append("app_context_changed")
    spec["settings"]["interactivity"] = {"is_enabled": True}
    found = problems(collect(bot_sources()), spec)
    assert "the manifest requests im:read, which nothing uses" in found
    assert "the manifest subscribes app_context_changed, which nothing listens to" in found
    assert "interactivity is enabled but nothing listens to actions, views or shortcuts" in found


def test_quickstart_explains_each_scope_once_and_lists_the_events() -> None:
    text = QUICKSTART.read_text()
    spec = manifest()
    rows = re.findall(r"^\| `([a-z_:.]+)` \| (.+?) \|$", text, flags=re.MULTILINE)
    documented = [scope for scope, why in rows if ":" in scope or scope == "commands"]
    assert sorted(documented) == sorted(spec["oauth_config"]["scopes"]["bot"])  # one line per scope, no extras
    assert all(len(why) > 10 for _scope, why in rows)
    events = text[text.index("\nEvents:") :].split(". ")[0]
    assert sorted(re.findall(r"`([a-z_.]+)`", events)) == sorted(spec["settings"]["event_subscriptions"]["bot_events"])
    assert "interactivity" not in MANIFEST.read_text().split("settings:")[1]
