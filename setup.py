"""Package discovery for setuptools; everything else is in pyproject.toml.

Every package under bot/ ships (found, not listed, so a new subpackage cannot be left out of a wheel by
accident; data-only folders such as bot/tokens/tiktoken_files count as packages), plus the top-level migrations/
folder, which installs as bot.migrations.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["bot", "bot.*"], exclude=["*.__pycache__"]),
        "bot.migrations",
        "bot.migrations.versions",
    ],
    package_dir={"bot.migrations": "migrations", "bot.migrations.versions": "migrations/versions"},
)
