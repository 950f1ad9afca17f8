# The worker image (also runs the Salesforce emulator and the operator commands):
# the same pinned dependencies as `make test`.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY streams ./streams
COPY schemas ./schemas
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
# The worker's web server: /bookings/{id}/, /metrics/, /health/.
EXPOSE 6066
ENTRYPOINT ["activity-sync"]
CMD ["worker", "-l", "info"]
