# release-bot image: `docker compose up` (docker-compose.yml) runs PostgreSQL, a one-off
# `release-bot migrate` and two bot processes (one per Discord shard) on it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
COPY fakes ./fakes
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["release-bot"]
