"""The one secret detector: what looks like a credential, for the log scrubber and the reply policy alike.

Below every other package (imports nothing from bot), so logging can use it without import cycles.

Families come from two places:
- Lukas's own list (providers Lukas talks to, the Slack tokens it holds, generic `key = value` assignments,
  Bearer tokens, passwords in URLs, whole private-key blocks);
- the regex plugins of detect-secrets (a maintained scanner): AWS, Azure, basic auth, Cloudant, Discord,
  GitHub, GitLab, IBM, JWT, Mailchimp, npm, OpenAI, PyPI, SendGrid, Slack, Softlayer, Square, Stripe, Telegram,
  Twilio, Artifactory. Their patterns are read from the installed package, so its updates reach Lukas.
Families whose pattern alone would also match ordinary words (short alphanumeric shapes) only count when the
value looks random (letters and digits, high entropy). Budget: < 0.5 ms per 2 KB reply (bench/secrets_bench.py).
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger(__name__)

Span = tuple[int, int, str]  # start, end, kind


@dataclass(frozen=True)
class Family:
    kind: str
    pattern: re.Pattern[str]
    group: int | str = 0  # the part of the match that is the secret (the rest stays readable)
    needs_random: bool = False  # the shape alone is not enough: the value must look random too
    # Cheap gates before the regex runs (most text has no secret): every tuple in `needs` must have one of its
    # substrings in the lower-cased text, and the text must hold a run of >= `min_run` token characters.
    needs: tuple[tuple[str, ...], ...] = ()
    min_run: int = 0


_B = r"(?<![A-Za-z0-9_\-])"  # not in the middle of a longer word
_KEYWORDS = ("key", "secret", "token", "passw", "pwd", "pw", "pass")
_OWN: tuple[Family, ...] = (
    Family(
        "openai_key",
        re.compile(_B + r"sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_\-]{20,}"),
        needs=(("sk-",),),
    ),
    Family(
        "api_key", re.compile(_B + r"sk-[A-Za-z0-9_\-]{12,19}(?![A-Za-z0-9_\-])"), needs_random=True, needs=(("sk-",),)
    ),
    Family("slack_token", re.compile(_B + r"xox[a-z]-[A-Za-z0-9\-]{6,}"), needs=(("xox",),)),
    Family("slack_app_token", re.compile(_B + r"xapp-[A-Za-z0-9\-]{6,}"), needs=(("xapp-",),)),
    Family(
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{10,}"),
        needs=(("hooks.slack.com",),),
    ),
    Family(
        "aws_access_key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        needs=(("akia", "asia"),),
    ),
    Family(
        "github_token",
        re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
        needs=(("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),),
    ),
    Family("google_api_key", re.compile(_B + r"AIza[0-9A-Za-z_\-]{35}"), needs=(("aiza",),)),
    Family("groq_key", re.compile(_B + r"gsk_[A-Za-z0-9]{20,}"), needs=(("gsk_",),)),
    Family("huggingface_token", re.compile(_B + r"hf_[A-Za-z0-9]{30,}"), needs=(("hf_",),)),
    Family(
        "stripe_key", re.compile(_B + r"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"), needs=(("_live_", "_test_"),)
    ),
    Family("gitlab_token", re.compile(_B + r"glpat-[A-Za-z0-9_\-]{20,}"), needs=(("glpat-",),)),
    Family("npm_token", re.compile(_B + r"npm_[A-Za-z0-9]{36}"), needs=(("npm_",),)),
    Family("pypi_token", re.compile(_B + r"pypi-[A-Za-z0-9_\-]{50,}"), needs=(("pypi-",),)),
    Family("jwt", re.compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"), needs=(("eyj",),)),
    Family("url_password", re.compile(r"(?<=://)[^/\s:@<>|]+:[^/\s@<>|]+(?=@)"), needs=(("://",), ("@",))),
    Family(
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY[A-Z ]*-----(?:.*?-----END [A-Z ]*PRIVATE KEY[A-Z ]*-----|.*)", re.S),
        needs=(("private key",),),
    ),
    Family("private_key", re.compile(r"PuTTY-User-Key-File-\d.*", re.S), needs=(("putty-user-key-file",),)),
    Family(
        "credential",
        re.compile(
            r"(?i)(?<![a-z0-9])(?:api[_\- ]?key|apikey|access[_\- ]?key|secret(?:[_\- ]?key)?|client[_\- ]?secret|"
            r"(?:access|auth|bearer|refresh)[_\- ]?token|token|passw(?:or)?d)\b[\"']?\s*[:=]\s*[\"']?"
            r"(?P<value>[^\s\"'`,;<>]{16,})"
        ),
        group="value",
        needs_random=True,
        needs=(("key", "secret", "token", "passw"), (":", "=")),
    ),
    Family(
        "credential",
        re.compile(r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9_\-+/=.~]{20,})"),
        group="value",
        needs_random=True,
        needs=(("bearer",),),
        min_run=20,
    ),
)

# detect-secrets plugins: module, class, which group is the secret, needs a random-looking value, gates.
# Left out on purpose: IP addresses (not secrets), keyword and high-entropy plugins (need file context),
# private keys (the own family redacts the whole block, not just its header).
_SCANNER_PLUGINS: tuple[tuple[str, str, int, bool, tuple[tuple[str, ...], ...], int], ...] = (
    ("aws", "AWSKeyDetector", 0, False, (("a3t", "abia", "acca", "akia", "asia", "aws"),), 16),
    ("azure_storage_key", "AzureStorageKeyDetector", 0, False, (("accountkey=",),), 24),
    ("basic_auth", "BasicAuthDetector", 1, False, (("://",), ("@",)), 0),
    ("cloudant", "CloudantDetector", 1, True, (("cl",), _KEYWORDS), 24),
    ("discord", "DiscordBotTokenDetector", 0, True, ((".",),), 24),
    ("github_token", "GitHubTokenDetector", 0, False, (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),), 36),
    (
        "gitlab_token",
        "GitLabTokenDetector",
        0,
        False,
        (("gl", "gr1348941"),),
        20,
    ),
    ("ibm_cloud_iam", "IbmCloudIamDetector", 1, True, (_KEYWORDS,), 44),
    ("ibm_cos_hmac", "IbmCosHmacDetector", 1, True, (("secret",),), 48),
    ("jwt", "JwtTokenDetector", 0, True, (("eyj",),), 0),
    ("mailchimp", "MailchimpDetector", 0, True, (("-us",),), 32),
    ("npm", "NpmDetector", 1, False, (("_authtoken",),), 0),
    ("openai", "OpenAIDetector", 0, False, (("t3blbkfj",),), 40),
    ("pypi_token", "PypiTokenDetector", 0, False, (("pypi-",),), 70),
    ("sendgrid", "SendGridDetector", 0, False, (("sg.",),), 22),
    ("slack", "SlackDetector", 0, False, (("xox", "hooks.slack.com"),), 0),
    ("softlayer", "SoftlayerDetector", 1, True, (("softlayer", "sl"),), 64),
    ("square_oauth", "SquareOAuthDetector", 0, False, (("sq0csp-",),), 43),
    ("stripe", "StripeDetector", 0, False, (("k_live_",),), 24),
    ("telegram_token", "TelegramBotTokenDetector", 0, True, ((":",),), 35),
    ("twilio", "TwilioKeyDetector", 0, True, (("ac", "sk"),), 34),
    ("artifactory", "ArtifactoryDetector", 0, True, (("akc", "ap"),), 11),
)


def _scanner_families() -> tuple[Family, ...]:
    """detect-secrets' regex families, read from the installed package (skipped with a log line if it changed)."""
    families: list[Family] = []
    for module_name, class_name, group, needs_random, needs, min_run in _SCANNER_PLUGINS:
        try:
            plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module_name}"), class_name)
            patterns = plugin.denylist
        except (ImportError, AttributeError) as exc:
            log.warning("secret detector: detect-secrets plugin %s unavailable (%s)", class_name, exc)
            continue
        for pattern in patterns:
            use_group = group if group <= pattern.groups else 0
            families.append(Family(module_name, pattern, use_group, needs_random, needs, min_run))
    return tuple(families)


FAMILIES: tuple[Family, ...] = _OWN + _scanner_families()
MIN_ENTROPY_BITS = 3.0  # per character; English words sit lower, random keys well above
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-+/=.]{11,}")


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long mix of letters and digits with high entropy: a key, not a word or a number."""
    has_letter = any(c.isalpha() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return has_letter and has_digit and shannon_entropy(value) >= MIN_ENTROPY_BITS


def find_secrets(text: str) -> list[Span]:
    """(start, end, kind) of every credential-looking span, sorted and merged."""
    if not text:
        return []
    found: list[tuple[int, int, int, str]] = []  # start, -end, family order (Lukas's own names first), kind
    lowered = text.lower()
    longest_run = max(map(len, _TOKEN_RUN.findall(text)), default=0)
    for order, family in enumerate(FAMILIES):
        if family.min_run > longest_run or not all(any(h in lowered for h in group) for group in family.needs):
            continue
        for match in family.pattern.finditer(text):
            start, end = match.span(family.group)
            if start < 0 or end <= start:
                continue
            if family.needs_random and not looks_random(text[start:end]):
                continue
            found.append((start, -end, order, family.kind))
    if not found:
        return []
    found.sort()
    merged: list[Span] = []
    for start, negative_end, _order, kind in found:
        end = -negative_end
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, kind))
    return merged


def redact(text: str, spans: list[Span], *, replacement: str) -> str:
    parts, last = [], 0
    for start, end, _kind in spans:
        parts += [text[last:start], replacement]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def scrub(text: str, *, replacement: str = "[redacted]") -> str:
    """text with every secret replaced: the log scrubber's and admin messages' one call."""
    spans = find_secrets(text)
    return redact(text, spans, replacement=replacement) if spans else text
