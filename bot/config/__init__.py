"""config.yml: schema, loading with ${ENV} substitution, and admin-readable errors."""

from bot.config.loader import default_config_path, load_config, parse_config, summarize
from bot.config.schema import LukasConfig

__all__ = ["LukasConfig", "default_config_path", "load_config", "parse_config", "summarize"]
