# The hub's image, for the Prefect server, the deploy step and the worker in docker-compose.yml.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ITSM_HOME=/opt/itsm-hub \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_LOGGING_EXTRA_LOGGERS=itsm

WORKDIR /opt/itsm-hub
COPY pyproject.toml constraints.txt README.md ./
COPY itsm_core ./itsm_core
COPY connectors ./connectors
COPY flows ./flows
COPY simulators ./simulators
COPY mappings ./mappings
COPY prefect.yaml alembic.ini ./
COPY docker/with-secrets.sh ./docker/
RUN pip install -c constraints.txt . \
    && useradd --system --home-dir /var/lib/itsm --create-home itsm \
    && mkdir -p /var/lib/itsm/inbox /var/lib/itsm/models /var/lib/itsm/results && chown -R itsm /var/lib/itsm
USER itsm
CMD ["itsm", "--help"]
