"""`redis_url`: the Redis server in $LUKAS_TEST_REDIS_URL, emptied for the test (skipped when not set)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import REDIS_ENV


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis tests need {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15)")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
