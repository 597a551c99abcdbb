# One image for every media_pipeline service in docker-compose.yml: the Dagster code server,
# webserver and daemon, and the API. Only the command differs between them.
FROM python:3.11-slim

# No secrets here: passwords, tokens and database URLs come from the environment at run time
# (docker-compose.yml reads them from .env), so the image can be pushed to any registry.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MEDIA_PIPELINE_HOME=/data

# A fixed uid, so the owner of bind-mounted host folders (watch folder, media) can be matched.
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app

WORKDIR /opt/media_pipeline

# Dependencies first, every one at the version and hash of the lock file (scripts/lock): this
# layer is rebuilt only when the lock changes, not on every code change. ffmpeg needs no apt
# package: the imageio-ffmpeg wheel carries a static binary.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY media_pipeline ./media_pipeline
COPY api ./api
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# The Postgres instance config reads its URL from MEDIA_PIPELINE_DAGSTER_POSTGRES_URL at run time.
COPY media_pipeline/dagster_home/dagster.postgres.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
# Writes MEDIA_PIPELINE_MAX_CONCURRENT_RUNS into the instance config (Dagster reads no env var
# for the run limit), then execs the command.
COPY deploy/docker-entrypoint.py /opt/dagster/docker-entrypoint.py

# Mount points owned by the app user: an empty named volume mounted here starts with this
# ownership, so the non-root services can write artifacts and Dagster's compute logs.
RUN mkdir -p /data/artifacts /data/watch /media "${DAGSTER_HOME}/storage" \
    && chown -R app:app /data "${DAGSTER_HOME}"

# Numeric, so runtimes (and Kubernetes runAsNonRoot) can tell it is not root without /etc/passwd.
USER ${APP_UID}:${APP_UID}
# Out of the source folder, so `import media_pipeline` finds the installed package, as it would
# in any other process of the image.
WORKDIR /home/app

EXPOSE 3000 4000 8000

ENTRYPOINT ["python", "/opt/dagster/docker-entrypoint.py"]
# Without a command the container runs the code server; docker-compose.yml sets each service's.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "media_pipeline.definitions"]
