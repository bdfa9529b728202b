# QML Explorer: the web app with an embedded worker, on the pinned TensorFlow Quantum / qsim stack.
#   docker build -t qml-explorer .
#   docker run -p 8501:8501 -v qmlapp-data:/app/data qml-explorer      # then open http://localhost:8501
# Bound to 0.0.0.0 inside the container, so a login is required: set QMLAPP_PASSWORD (or mount
# .streamlit/secrets.toml); without one, a random password is generated and printed in the log.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONPATH=/app \
    QMLAPP_ADDRESS=0.0.0.0 \
    QMLAPP_PORT=8501 \
    QMLAPP_DATABASE_URL=sqlite:////app/data/qmlapp.db

WORKDIR /app

# Dependencies first, so that code changes do not reinstall TensorFlow: the hashed lock, every package
# at its locked version (pytest, hypothesis and ruff come along: a few MB, and the image can test itself).
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock && pip check

# A non-root user owns only the data volume; the code stays read-only to it.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin qml \
    && mkdir -p /app/data && chown qml:qml /app/data

COPY . .
RUN python -m compileall -q qmlapp db

USER qml
VOLUME ["/app/data"]
EXPOSE 8501

# Streamlit's own health endpoint; python instead of curl, which the slim image lacks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('QMLAPP_PORT', '8501') + '/_stcore/health', timeout=4)"

CMD ["python", "-m", "qmlapp", "serve"]
