"""When a lease is still safely ours, and how often to renew and sweep. Pure.

The database decides expiry on its own clock; this process only keeps a conservative local view: a lease renewed
by a request sent at local monotonic time `asked_at` holds at least until `asked_at + ttl` (the database set
`its now + ttl`, and its now was no earlier than the request). Monotonic time is immune to wall-clock jumps.
"""

from __future__ import annotations


def safe_until(*, asked_at: float, ttl: float) -> float:
    """The local monotonic moment until which a lease granted or renewed by a request sent at `asked_at` holds."""
    return asked_at + ttl


def still_ours(*, now: float, safe_until: float, lost: bool) -> bool:
    """True while this writer may still write (and post) under the lease."""
    return not lost and now < safe_until


def renew_every(*, ttl: float) -> float:
    """Renew three times per lease, so two missed renewals in a row still leave it held."""
    return max(ttl / 3.0, 0.05)
