"""Contract-layer overhead: a 20-message history checked against 200 banned terms (seed 000 promises < 5 ms).

Run: python bench/contracts_bench.py [--iterations N]. Prints p50/p99/mean per check in milliseconds.
Token counts are computed once up front, as the chat pipeline stores them per message.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.config.contracts_schema import ChatInputSpec  # noqa: E402
from bot.contracts import ChatCandidate, ContractEngine, ContractMetrics, render_metrics  # noqa: E402
from bot.tokens.counting import count_message  # noqa: E402
from bot.tokens.trimming_logic import PromptMessage  # noqa: E402

MODEL = "gpt-4.1-mini"
SENTENCES = [
    "Morning Lukas, the cluster queue is finally moving again after the weekend maintenance.",
    "Could you remind me what we decided about the ablation runs for the workshop paper?",
    "I think the learning-rate warmup was too short, the loss spikes right after step 2000.",
    "Honey break at three? The coffee machine on the second floor is broken again 🐻",
    "Our reviewer asked for confidence intervals; bootstrapping over seeds should be enough.",
    "Thanks! That summary of the related work was really helpful for the introduction.",
    "Do you know whether the GPU quota resets on Monday or at the start of the month?",
    "The plots look great, but the legend overlaps the curves in the second panel.",
]


def banned_terms(count: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    terms = set()
    while len(terms) < count:
        word = "".join(rng.choice(letters) for _ in range(rng.randint(4, 9)))
        if len(terms) % 10 == 0:  # every tenth is a two-word phrase
            word += " " + "".join(rng.choice(letters) for _ in range(rng.randint(3, 7)))
        terms.add(word)
    return sorted(terms)


def history(system_prompt: str, rng: random.Random, size: int = 20) -> list[PromptMessage]:
    def message(role: str, text: str) -> PromptMessage:
        return PromptMessage(role=role, content=text, tokens=count_message(text, model=MODEL))

    messages = [message("system", system_prompt)]
    for index in range(size):
        text = " ".join(rng.sample(SENTENCES, 3))
        messages.append(message("user" if index % 2 == 0 else "assistant", text))
    messages.append(message("user", "Lukas, can you summarise what we discussed about the workshop paper?"))
    return messages


def timed(label: str, call: Callable[[], object], iterations: int) -> float:
    for _ in range(min(200, iterations)):
        call()
    samples = []
    for _ in range(iterations):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[min(int(len(samples) * 0.99), len(samples) - 1)]
    print(f"  {label:<52} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   mean {statistics.fmean(samples):7.3f} ms")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(4)
    config = load_config(ROOT / "config.yml", env={})
    terms = banned_terms(200, rng)
    contracts = config.contracts.model_copy(update={"banned_terms": terms})
    scoped = contracts.model_copy(
        update={
            "chat_input": [
                ChatInputSpec(name="not_empty"),
                ChatInputSpec(name="token_budget"),
                ChatInputSpec(name="banned_terms", auto_fix=False, settings={"scope": "history"}),
            ]
        }
    )
    metrics = ContractMetrics()
    engine = ContractEngine.from_config(contracts, base_dir=ROOT, metrics=metrics)
    engine_history = ContractEngine.from_config(scoped, base_dir=ROOT, metrics=ContractMetrics())
    messages = history(config.persona.system_prompt, rng)
    candidate = ChatCandidate(messages=messages, budget_tokens=4000, reply_tokens=150, model=MODEL)
    tight = ChatCandidate(messages=messages, budget_tokens=900, reply_tokens=150, model=MODEL)
    bad = ChatCandidate(messages=[*messages[:-1], PromptMessage("user", f"what is {terms[7]}?", 12)], **_budget())
    reply = " ".join(SENTENCES[:4])
    long_reply = " ".join(SENTENCES * 8)
    prompt = "A friendly stuffed teddy bear mascot named Lukas, in a research lab, surrounded by beakers and books"

    chars = sum(len(m.content) for m in messages)
    print(
        f"contracts bench: {len(messages)} messages ({chars} characters), {len(terms)} banned terms, "
        f"{args.iterations} iterations, Python {sys.version.split()[0]}"
    )
    results = {
        "chat input (default: newest message scanned)": timed(
            "chat input, newest message scanned (default)", lambda: engine.check_chat_input(candidate), args.iterations
        ),
        "chat input (history scanned)": timed(
            "chat input, all 21 messages scanned", lambda: engine_history.check_chat_input(candidate), args.iterations
        ),
    }
    timed("chat input, banned term in newest (violation)", lambda: engine.check_chat_input(bad), args.iterations)
    timed("chat input, over budget (token_budget fix)", lambda: engine.check_chat_input(tight), args.iterations // 3)
    results["reply"] = timed("reply, 4 sentences", lambda: engine.check_reply(reply), args.iterations)
    timed(f"reply, {len(long_reply)} chars (reply_length fix)", lambda: engine.check_reply(long_reply), args.iterations)
    timed("reply prefix (streaming partial check)", lambda: engine.check_reply_partial(reply[:150]), args.iterations)
    timed("image prompt", lambda: engine.check_image_prompt(prompt), args.iterations)
    both = timed(
        "chat input (history scanned) + reply, together",
        lambda: (engine_history.check_chat_input(candidate), engine.check_reply(reply)),
        args.iterations,
    )
    verdict = "PASS" if both < 1.0 else "MISS"
    print(f"target p50 < 1 ms for chat input + reply with the full history scanned: {both:.3f} ms -> {verdict}")
    print("engine metrics (default engine):")
    for line in render_metrics(engine.metrics()):
        print("  " + line)


def _budget() -> dict[str, object]:
    return {"budget_tokens": 4000, "reply_tokens": 150, "model": MODEL}


if __name__ == "__main__":
    main()
