# The worker image: the same pinned dependencies as `make test`.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY streams ./streams
COPY schemas ./schemas
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
ENTRYPOINT ["activity-sync"]
CMD ["worker", "-l", "info"]
