"""Alembic migrations, installed as bot.migrations so `lukas db upgrade` works from a wheel too."""
