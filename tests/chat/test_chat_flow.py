"""Chat end to end: signed Slack events into a running Lukas, stand-in Slack and LLM servers, a real database."""

from __future__ import annotations

from pathlib import Path

from tests.harness import mention_event, message_event, new_ts, running_lukas, sign
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


async def test_dm_gets_one_reply_with_persona_names_and_ledger(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.add_user("U0ANNA", display_name="Anna")
        status, _ = await h.send(message_event(text="Hi Lukas, how are you?"))
        assert status == 200
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()

        post = h.slack.calls_to("chat.postMessage")[0].params
        assert post["channel"] == "D0DM" and not post.get("thread_ts")
        assert post["markdown_text"] == "Hello from the honey pot! 🐻" and "text" not in post
        sent = h.llm.chat_requests[0].body
        assert sent["messages"][0]["role"] == "system"
        assert sent["messages"][0]["content"].startswith("You are Lukas the Bear")
        assert sent["messages"][-1] == {"role": "user", "content": "Anna: Hi Lukas, how are you?"}
        assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 150 and sent["model"] == "gpt-4.1-mini"

        user_row, reply_row = await h.messages()
        assert (user_row.sender, user_row.user_name, user_row.reply_state) == ("user", "Anna", "done")
        assert user_row.token_count and user_row.token_count > 5
        assert (reply_row.sender, reply_row.content) == ("bot", post["markdown_text"])
        assert reply_row.reply_to_id == user_row.id
        (call,) = await h.llm_calls()
        assert (call.outcome, call.prompt_tokens, call.completion_tokens, call.attempts) == ("ok", 42, 17, 1)
        assert abs(call.cost_usd - (42 * 0.40 + 17 * 1.60) / 1_000_000) < 1e-12


async def test_mention_replies_in_a_thread_and_follow_ups_need_no_mention(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        root = new_ts()
        await h.send(mention_event(text="what is honey made of?", ts=root))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()  # the reply is stored after it is posted: the follow-up must see it in the history
        assert h.slack.calls_to("chat.postMessage")[0].params["thread_ts"] == root
        assert (
            h.llm.chat_requests[0].body["messages"][-1]["content"].endswith(": what is honey made of?")
            or h.llm.chat_requests[0].body["messages"][-1]["content"] == "what is honey made of?"
        )
        assert "<@UBOT>" not in h.llm.chat_requests[0].body["messages"][-1]["content"]

        await h.send(message_event(text="and bees?", channel="C0GENERAL", thread_ts=root))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 2)
        second = h.slack.calls_to("chat.postMessage")[1].params
        assert second["thread_ts"] == root and second["channel"] == "C0GENERAL"
        roles = [m["role"] for m in h.llm.chat_requests[1].body["messages"]]
        assert roles == ["system", "user", "assistant", "user"]

        # A thread Lukas is not part of: no reply, nothing stored.
        await h.send(message_event(text="unrelated", channel="C0GENERAL", thread_ts=new_ts()))
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 2
        assert len(await h.conversations()) == 1 and len(await h.messages()) == 4


async def test_redeliveries_and_the_mention_message_pair_get_exactly_one_reply(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        event = message_event(text="ping")
        for retry in (None, 1, 2, 3):
            status, _ = await h.send(event, event_id="EvSAME", retry_num=retry)
            assert status == 200
        ts = new_ts()
        await h.send(mention_event(text="hello there", ts=ts))
        await h.send(message_event(text="<@UBOT> hello there", channel="C0GENERAL", ts=ts, channel_type="channel"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) >= 2)
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 2
        assert len(h.llm.chat_requests) == 2
        assert [m.sender for m in await h.messages()].count("user") == 2


async def test_own_bot_edited_and_system_messages_are_ignored(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        for event in (
            message_event(text="my own words", user="UBOT"),
            message_event(text="beep", user="U0OTHER", bot_id="B0OTHER"),
            message_event(text="edited", subtype="message_changed"),
            message_event(text="gone", subtype="message_deleted"),
            message_event(text="joined", channel="C0GENERAL", subtype="channel_join"),
            message_event(text="", files=[{"id": "F1"}]),
        ):
            status, _ = await h.send(event)
            assert status == 200
        status, _ = await h.send(
            {},
            body={
                "type": "event_callback",
                "team_id": "T0TEAM",
                "event_id": "EvX",
                "event": {"type": "reaction_added", "user": "U1"},
            },
        )
        assert status == 200
        await h.settle()
        assert h.slack.calls_to("chat.postMessage") == [] and h.llm.chat_requests == []
        assert await h.messages() == []


async def test_unsigned_and_stale_requests_are_refused(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        body = b'{"type":"event_callback","event":{"type":"message","channel":"D1","user":"U1","text":"x","ts":"1.1"}}'
        assert (await h.post_raw(body, {"Content-Type": "application/json"}))[0] == 401
        assert (await h.post_raw(body, sign(body, secret="wrong")))[0] == 401
        assert (await h.post_raw(body, sign(body, timestamp=1_000_000)))[0] == 401
        assert await h.messages() == [] and h.llm.chat_requests == []


async def test_history_is_the_last_20_messages_oldest_first(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn()
    llm.reply = lambda body: f"reply to {body['messages'][-1]['content']}"
    # Memory off: the plain window (with memory on, tests/memory covers the window plus the summary).
    overrides = {"memory": {"enabled": False}}
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        for i in range(13):
            await h.send(message_event(text=f"message {i}"))
            await h.wait_until(lambda n=i: len(h.slack.calls_to("chat.postMessage")) == n + 1)
            await h.settle()
        sent = h.llm.chat_requests[-1].body["messages"]
        assert len(sent) == 21 and sent[0]["role"] == "system"
        contents = [m["content"] for m in sent[1:]]
        # 25 usable messages so far (13 questions, 12 replies): the newest 20 start at the reply to message 2.
        assert contents[0] == "reply to message 2" and contents[-1] == "message 12"
        assert [m["role"] for m in sent[1:]] == ["assistant", "user"] * 10


async def test_trimming_keeps_the_newest_message_within_budget(tmp_path: Path, database_url: str) -> None:
    overrides = {"llm": {"context_budget_tokens": 600, "max_tokens": 100}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        for i in range(6):
            await h.send(message_event(text=f"story {i}: " + "the bees hum in the meadow " * 15))
            await h.wait_until(lambda n=i: len(h.slack.calls_to("chat.postMessage")) == n + 1)
            await h.settle()
        huge = "honey " * 5000
        await h.send(message_event(text=huge))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 7)
        from bot.tokens.counting import count_message

        answers = [r for r in h.llm.chat_requests if r.body["messages"][0]["content"].startswith("You are Lukas")]
        assert answers
        for request in answers:  # the answers' prompts (summary calls have their own input budget)
            messages = request.body["messages"]
            used = sum(count_message(m["content"], model="gpt-4.1-mini") for m in messages) + 3
            assert used + 100 <= 600
            assert messages[0]["role"] == "system"
        assert answers[5].body["messages"][-1]["content"].startswith("story 5")
        last = answers[6].body["messages"]
        assert len(last) == 2 and huge.startswith(last[-1]["content"]) and last[-1]["content"]
        stored = [m for m in await h.messages() if m.sender == "user"][-1]
        assert stored.content == huge.strip()  # the person's words are kept whole in the database


async def test_long_replies_are_split_and_slack_rate_limits_are_retried(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(reply="Bears love honey. " * 600)
    slack = SlackStandIn()
    long_replies = {"contracts": {"chat_output": [{"name": "reply_length", "settings": {"max_chars": 40000}}]}}
    async with llm, slack, running_lukas(tmp_path, database_url, llm=llm, slack=slack, overrides=long_replies) as h:
        slack.fail("chat.postMessage", "ratelimited", retry_after=1)
        await h.send(message_event(text="tell me everything"))
        await h.wait_until(lambda: len(h.slack.posted_texts()) >= 3, timeout=15)
        await h.settle()
        posts = h.slack.posted_texts()  # includes the rate-limited attempt
        assert all(len(text) <= 3900 for text in posts)
        delivered = posts[1:]
        assert " ".join(delivered).split() == ("Bears love honey. " * 600).split()
        reply = [m for m in await h.messages() if m.sender == "bot"]
        assert len(reply) == 1


async def test_user_message_is_kept_when_the_llm_and_slack_both_fail(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        from tests.standins.openai_api import LLMFault

        h.llm.faults.extend([LLMFault(500)] * 3)
        h.slack.fail("chat.postMessage", "channel_not_found", times=5)
        await h.send(message_event(text="are you there?"))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 3)
        await h.settle()
        (row,) = await h.messages()
        assert (row.sender, row.content, row.reply_state) == ("user", "are you there?", "failed")
        (call,) = await h.llm_calls()
        assert call.outcome == "server_error" and call.attempts == 3
