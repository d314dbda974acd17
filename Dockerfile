# Gito: one image for `gito serve` alone (embedded PostgreSQL and MQTT broker in /data) and for compose.yaml
# (external TimescaleDB, Mosquitto, Redis).
#
#   docker build -t gito .
#   docker run -p 8080:8080 -p 1883:1883 -v gito-data:/data -e SECRET_KEY=... gito
#
# linux/amd64 only for now: pgserver (the embedded PostgreSQL, a hard dependency) publishes no Linux arm64 wheel.

# --- build: a virtualenv with Gito and its dependencies ------------------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-deps . \
    && gito --help > /dev/null

# --- runtime ---------------------------------------------------------------------------------------------------------
FROM python:3.11-slim

# tini reaps the embedded PostgreSQL and broker children and forwards signals to Gito.
# mosquitto is what `gito serve` runs as its managed broker when MQTT_URL is unset (else the slower amqtt).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini mosquitto \
    && rm -rf /var/lib/apt/lists/*

# uid/gid 1883 on purpose: it is the `mosquitto` user of the eclipse-mosquitto image, so the password and ACL files
# Gito writes (mode 0600) into the volume it shares with that broker in compose.yaml are owned by the broker's user.
ARG GITO_UID=1883
ARG GITO_GID=1883
RUN groupadd --system --gid "${GITO_GID}" gito \
    && useradd --system --uid "${GITO_UID}" --gid gito --home-dir /home/gito --create-home --shell /usr/sbin/nologin gito \
    && mkdir -p /data /mqtt-auth \
    && chown gito:gito /data /mqtt-auth

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GITO_DATA_DIR=/data \
    GITO_HOST=0.0.0.0 \
    GITO_PORT=8080

USER gito
WORKDIR /home/gito
VOLUME ["/data"]
# 8080: web UI, REST API, device HTTP ingest. 1883: the managed MQTT broker (only when MQTT_URL is unset).
EXPOSE 8080 1883

# Start period covers first-run database initialisation and migrations.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GITO_PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["gito", "serve"]
