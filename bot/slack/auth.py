"""auth.test before serving: a transient failure is retried (Bolt would otherwise answer the first event 200 and
drop it), an invalid token stops Lukas with a clear message."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import StartupError
from bot.slack.client import slack_error
from bot.slack.connecting import SlackConnecting

log = logging.getLogger(__name__)
# Slack's answers that mean the token itself is wrong: retrying never helps.
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission"}
)


async def verify_token(client: AsyncWebClient, *, within: float, connecting: SlackConnecting) -> Any | None:
    """The auth.test answer, or None when Slack did not answer for `within` seconds (Lukas then serves anyway and
    Bolt asks again on the first event). Raises StartupError for a token Slack refuses. Failed tries go to
    `connecting` (/healthz's reason; one log line a minute)."""
    deadline = time.monotonic() + within
    wait = 0.5
    connecting.stage("auth.test", "checking the bot token")
    while True:
        try:
            return await client.auth_test()
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in TOKEN_ERRORS:
                raise StartupError(
                    f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-...) from your "
                    "app's OAuth & Permissions page again, or reinstall the app; see docs/quickstart.md"
                ) from None
            reason: BaseException | str = error
        except Exception as exc:  # connection trouble, timeouts: transient
            reason = exc
        connecting.failed(reason)
        if time.monotonic() + wait > deadline:
            log.warning(
                "Slack's auth.test did not succeed within %.0fs; serving anyway (Bolt checks on the first event)",
                within,
            )
            return None
        await asyncio.sleep(wait)
        wait = min(wait * 2, 5.0)


def seed_bolt_authorization(bolt: Any, result: Any) -> bool:
    """Hand the checked auth.test answer to Bolt's single-team authorization, so it never makes (and never fails)
    its own lazy call on the first event. Bolt keeps it in a middleware attribute (`auth_test_result`)."""
    from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization

    for middleware in getattr(bolt, "_async_middleware_list", []):
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.auth_test_result = result
            return True
    return False
