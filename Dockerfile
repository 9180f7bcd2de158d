# Lukas the Bear in a container.
#
#   docker build -t lukas .
#   docker run -d --name lukas --restart unless-stopped \
#     -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN -e OPENAI_API_KEY \
#     -v lukas-data:/app/data lukas
#
# HTTP mode instead of Socket Mode: pass SLACK_SIGNING_SECRET instead of SLACK_APP_TOKEN and publish the port
# (-p 3000:3000). Your own config: -v "$PWD/config:/app/config:ro" -e LUKAS_CONFIG=/app/config/config.yml.
# With PostgreSQL: docker compose up (docker-compose.yml). See docs/quickstart.md.
FROM python:3.12-slim AS build

# Provider SDKs: the ones the image's config.yml chat chain needs are added by themselves (`lukas config extras`);
# LUKAS_EXTRAS adds more, e.g. for a config mounted at run time: --build-arg LUKAS_EXTRAS="mistral ollama".
# The dev extra (test tools) is never installed here. The `anthropic` package you will find in the image is not
# an extra: any-llm-sdk 1.40 requires it for every provider (its message types import it).
ARG LUKAS_EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/lukas \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
RUN pip install --no-cache-dir 'uv>=0.13,<1'
WORKDIR /src

# The locked dependencies first (a layer rebuilt only when the lock changes), then Lukas himself, installed
# like any user would (not editable: with his migrations and the offline tiktoken files) into /opt/lukas.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-install-project $(for e in $LUKAS_EXTRAS; do printf -- '--extra %s ' "$e"; done)
COPY setup.py README.md config.yml ./
COPY bot ./bot
COPY migrations ./migrations
RUN uv sync --frozen --no-editable $(for e in $LUKAS_EXTRAS; do printf -- '--extra %s ' "$e"; done) \
    && extras="$(/opt/lukas/bin/lukas config extras config.yml) $LUKAS_EXTRAS" \
    && uv sync --frozen --no-editable $(for e in $extras; do printf -- '--extra %s ' "$e"; done)

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/lukas/bin:$PATH

WORKDIR /app
COPY --from=build /opt/lukas /opt/lukas
COPY config.yml ./config.yml

# An unprivileged user owns only the data folder (SQLite database, images waiting for Slack). uid/gid 10001 (not a
# system account: those end at 999, and useradd --system warns about the range).
RUN groupadd --gid 10001 lukas \
    && useradd --uid 10001 --gid lukas --no-create-home --no-log-init --home-dir /app --shell /usr/sbin/nologin lukas \
    && mkdir -p /app/data \
    && chown lukas:lukas /app/data
USER lukas

ENV LUKAS_CONFIG=/app/config.yml \
    DATABASE_URL=sqlite:////app/data/lukas.db \
    LUKAS_DATA_DIR=/app/data \
    PORT=3000
VOLUME ["/app/data"]
EXPOSE 3000

# GET /healthz in both modes (on PORT): 503 when the database is unreachable or, in Socket Mode, when the socket
# to Slack has been down for more than 30 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

# Migrate, then hand the process over to Lukas so he receives SIGTERM from `docker stop` directly.
CMD ["sh", "-c", "lukas db upgrade && exec lukas run"]
