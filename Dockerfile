# syntax=docker/dockerfile:1
# Images, by target:
#   runtime (also `worker`, the default): the installed package and its runtime
#       dependencies pinned by requirements.lock; `activity-sync` (worker and operator
#       commands). No dev kit, no dev tools, no source checkout.
#   salesforce: runtime plus the dev kit (devkit/ and the `devkit` extra), running
#       `python -m devkit salesforce-emulator` (docker-compose.yml's local Salesforce).
# tests/unit/test_compose.py checks these promises.

# The wheel, built with the locked setuptools.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
RUN pip install -c requirements.lock setuptools wheel
COPY streams ./streams
COPY schemas ./schemas
RUN pip wheel --no-deps --no-build-isolation -w /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock ./
# Non-editable, from the wheel: the runtime dependencies only, at the locked versions.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install -c requirements.lock /wheels/*.whl
# The worker's web server: /bookings/{id}/, /metrics/, /health/.
EXPOSE 6066
ENTRYPOINT ["activity-sync"]
CMD ["worker", "-l", "info"]

# The local Salesforce emulator: the dev kit runs from its source, as in a checkout.
FROM runtime AS salesforce
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install -c requirements.lock --find-links /wheels "booking-activity-sync[devkit]"
COPY devkit ./devkit
# The org metadata the emulator enforces (custom fields, the version fence).
COPY salesforce ./salesforce
EXPOSE 8443
ENTRYPOINT ["python", "-m", "devkit"]
CMD ["salesforce-emulator", "--host", "0.0.0.0", "--port", "8443", "--data-dir", "/emulator"]

# `docker build .` without --target: the runtime image.
FROM runtime AS worker
