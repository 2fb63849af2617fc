# Pacebot service image: small (slim base, no build tools or caches in the final layer), runs as an
# unprivileged user, and reports its health from /healthz. See docs/deploy.md.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cards ./cards
COPY domain ./domain
COPY handlers ./handlers
COPY storage ./storage
RUN python -m venv /opt/pacebot && /opt/pacebot/bin/pip install /src

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pacebot --create-home pacebot \
    && mkdir -p /etc/pacebot && chown pacebot:pacebot /var/lib/pacebot
COPY --from=build /opt/pacebot /opt/pacebot
COPY deploy/pacebot.toml /etc/pacebot/pacebot.toml
ENV PATH=/opt/pacebot/bin:$PATH PACEBOT_CONFIG=/etc/pacebot/pacebot.toml PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/pacebot
USER pacebot
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('PACEBOT_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
CMD ["pacebot", "serve", "--host", "0.0.0.0", "--port", "8080"]
