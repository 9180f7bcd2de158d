"""docker-compose.yml, checked structurally (no Docker engine in the suite): the `replicas` profile adds a second
Lukas on the same PostgreSQL and a Redis they share."""

from __future__ import annotations

import yaml

from tests.helpers import REPO_ROOT


def test_the_replicas_profile_is_a_second_lukas_and_redis_on_the_same_database() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    profiled = {name for name, service in services.items() if "replicas" in service.get("profiles", [])}
    assert profiled == {"lukas-2", "redis"}
    assert "profiles" not in services["lukas"] and "profiles" not in services["db"]  # plain `up`: as before
    first, second = services["lukas"]["environment"], services["lukas-2"]["environment"]
    assert first["DATABASE_URL"] == second["DATABASE_URL"] and "@db:5432/" in second["DATABASE_URL"]
    assert second["REDIS_URL"] == "redis://redis:6379/0"
    assert first["REDIS_URL"] == "${REDIS_URL:-}"  # set REDIS_URL to share with lukas-2
    assert set(services["lukas-2"]["depends_on"]) == {"db", "redis"}
    assert services["lukas-2"]["image"] == services["lukas"]["image"]
    assert services["lukas-2"]["volumes"][1] != services["lukas"]["volumes"][1]  # each keeps its own data dir
