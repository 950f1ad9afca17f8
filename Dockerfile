# syntax=docker/dockerfile:1
# Images, by target:
#   runtime (also `worker`, the default): the installed package (a wheel, not editable)
#       and its runtime dependencies from requirements/runtime.lock, installed with
#       --require-hashes; `activity-sync` (worker and operator commands), run as the
#       unprivileged user `activity-sync`, with a HEALTHCHECK on the worker's /health/.
#       No dev kit, no dev tools, no source checkout.
#   salesforce: runtime plus the dev kit (devkit/ and the `devkit` extra, pinned by
#       requirements/dev.lock), running `python -m devkit salesforce-emulator`
#       (docker-compose.yml's local Salesforce).
# The locks hash the CPython 3.11 files of both platforms the image builds on, Linux
# x86_64 and aarch64 (`make lock`; tests/unit/test_locks.py). faust-streaming has no
# aarch64 wheel: there pip builds its locked sdist, pure Python (no compiler here; its C
# speedups are optional), fetching its build requirements unhashed.
# tests/unit/test_compose.py checks these promises.

# The base image, by tag: not pinned by digest here (no registry could be asked when this
# was written, and a digest copied from elsewhere could name one platform's manifest and
# break the other's build). To pin, pass the multi-platform index digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim

# The wheel, built with the locked setuptools.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/build.lock ./requirements/
RUN pip install --require-hashes -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
RUN pip wheel --no-deps --no-build-isolation -w /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The worker's defaults in the image: table state in /data (the user's, below; /app is
# root's), and the web server on every interface so EXPOSE 6066 is reachable. A worker
# bound beyond loopback serves booking data, so it needs ACTIVITY_SYNC_WEB_TOKEN (or
# ACTIVITY_SYNC_WEB_TOKEN_FILE): without one it exits 2 saying so (or run it with
# ACTIVITY_SYNC_WEB_BIND=127.0.0.1, or `worker --without-web`).
ENV ACTIVITY_SYNC_DATA_DIR=/data ACTIVITY_SYNC_WEB_BIND=0.0.0.0
WORKDIR /app
COPY requirements/runtime.lock ./requirements/
# The runtime dependencies only, each checked against its locked hash.
RUN pip install --require-hashes -r requirements/runtime.lock
# Non-editable, from the wheel; its dependencies are all installed above.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-deps /wheels/*.whl
# An unprivileged user owns the table state (/data) and the CA certificate's mount point
# (/salesforce-ca): a named volume mounted there starts with this ownership.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app activity-sync \
    && mkdir -p /data /salesforce-ca \
    && chown activity-sync:activity-sync /data /salesforce-ca
USER activity-sync
# The worker's web server: /bookings/{id}/ (bearer token), /metrics/, /health/.
EXPOSE 6066
# 503 (broker unreachable, every Salesforce write failing) or no answer: unhealthy. The
# probe asks the port and bind the worker uses: its settings (ACTIVITY_SYNC_WEB_PORT,
# ACTIVITY_SYNC_WEB_BIND) and its command line (--web-port, --web-bind); with
# --without-web (or ACTIVITY_SYNC_WEB_ENABLED=false) there is nothing to ask: healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "streams.commands.healthcheck"]
ENTRYPOINT ["activity-sync"]
CMD ["worker", "-l", "info"]

# The local Salesforce emulator: the dev kit runs from its source, as in a checkout.
FROM runtime AS salesforce
USER root
COPY requirements/dev.lock ./requirements/
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install -c requirements/dev.lock --find-links /wheels "booking-activity-sync[devkit]"
COPY devkit ./devkit
# The org metadata the emulator enforces (custom fields, the version fence).
COPY salesforce ./salesforce
RUN mkdir -p /emulator && chown activity-sync:activity-sync /emulator
USER activity-sync
EXPOSE 8443
HEALTHCHECK --interval=5s --timeout=3s --retries=30 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8443), 2)"]
ENTRYPOINT ["python", "-m", "devkit"]
CMD ["salesforce-emulator", "--host", "0.0.0.0", "--port", "8443", "--data-dir", "/emulator"]

# `docker build .` without --target: the runtime image.
FROM runtime AS worker
