"""The replica tests' `redis_url` fixture, for the guards shared through Redis."""

from tests.replicas.conftest import redis_url

__all__ = ["redis_url"]
