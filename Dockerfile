# The serving image: `emotion-batch serve` with the bundled model baked in, as a non-root user.
#   docker build -t emotion-batch .
#   docker run --rm -p 127.0.0.1:8000:8000 emotion-batch          # http://127.0.0.1:8000/
# Not built or run by this project's CI (no container engine there); see README, "Serving".
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY emotion_batch ./emotion_batch
COPY templates ./templates
COPY models ./models
COPY sql ./sql
# a non-editable install copies templates, models and SQL into the package (emotion_batch/_assets)
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile ".[api,postgres]" \
 && find /opt/venv -name "__pycache__" -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -c "from emotion_batch.classifier import locate_model; \
[locate_model(None, backend=b) for b in ('keras', 'litert')]"

FROM python:3.11-slim
# WeasyPrint's system libraries (Pango, fonts) so that `emotion-batch report`/`run` render PDFs in the image;
# libharfbuzz-subset0 subsets the embedded fonts (36 KB instead of 1 MB a report). No Chromium. The reports'
# text stays searchable without the subsetter too: their style sheet switches ligatures off (README, Reports).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --create-home app \
 && mkdir /data && chown app:app /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    EMOTION_BATCH_DB=sqlite:////data/emotion_batch.sqlite
USER app
WORKDIR /app
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["emotion-batch", "serve", "--host", "0.0.0.0", "--port", "8000"]
