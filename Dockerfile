# syntax=docker/dockerfile:1
# One image for every role of journey: `journey collector|processor|api|up|rebuild|demo`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JOURNEY_DATA_DIR=/data

# A fixed non-root uid, so the shared /data volume has one owner whichever service made it.
RUN groupadd --system --gid 10001 journey \
 && useradd --system --uid 10001 --gid journey --create-home --home-dir /home/journey journey \
 && mkdir /data && chown journey:journey /data

# Only what `pip install .` needs; tests, data and the venv stay out (see .dockerignore).
COPY pyproject.toml README.md /tmp/src/
COPY journey /tmp/src/journey
COPY ingest /tmp/src/ingest
COPY processor /tmp/src/processor
COPY warehouse /tmp/src/warehouse
COPY api /tmp/src/api
RUN pip install /tmp/src && rm -rf /tmp/src

USER journey
WORKDIR /home/journey
VOLUME ["/data"]
EXPOSE 8000 8001
ENTRYPOINT ["journey"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
