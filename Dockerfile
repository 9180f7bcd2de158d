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
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package (with its migrations and the offline tiktoken files), installed like any user would.
# Provider SDKs (issue 18): the ones config.yml's chat chain needs are added by themselves (`lukas config extras`);
# LUKAS_EXTRAS adds more, e.g. for a config mounted at run time: --build-arg LUKAS_EXTRAS="mistral ollama".
ARG LUKAS_EXTRAS=""
COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY migrations ./migrations
COPY config.yml ./config.yml
RUN pip install --no-cache-dir . \
    && extras="$(lukas config extras config.yml) $LUKAS_EXTRAS" \
    && extras="$(echo $extras | tr ' ' ',')" \
    && if [ -n "$extras" ]; then pip install --no-cache-dir ".[$extras]"; fi \
    && rm -rf /app/bot /app/migrations /app/pyproject.toml /app/setup.py /app/README.md /app/build /app/*.egg-info

# An unprivileged user owns only the data folder (SQLite database, images waiting for Slack).
RUN groupadd --system --gid 10001 lukas \
    && useradd --system --uid 10001 --gid lukas --home-dir /app --shell /usr/sbin/nologin lukas \
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
