"""docker-compose.yml, checked structurally (no Docker engine in the suite): the `replicas` profile is two Lukas on
one PostgreSQL and one Redis."""

from __future__ import annotations

import yaml

from tests.helpers import REPO_ROOT


def test_the_replicas_profile_is_two_lukas_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = {name for name, service in services.items() if "replicas" in service.get("profiles", [])}
    assert replicas == {"lukas-a", "lukas-b", "postgres", "redis"}
    for name in ("lukas-a", "lukas-b"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
        assert services[name]["build"] == "."
    assert services["lukas"].get("profiles") is None  # `docker compose up` alone: one Lukas, as before
    assert services["lukas-a"]["ports"] != services["lukas-b"]["ports"]
