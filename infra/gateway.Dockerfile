# The DICOM gateway's image (template.yaml, DeployGateway=yes; docs/pacs.md): python -m cxr_gateway, non-root.
# Build from the repository root and push to the stack's GatewayRepository, tagged with the git sha:
#   docker build --platform linux/amd64 -f infra/gateway.Dockerfile -t cxr-gateway .
# Settings come from CXR_GATEWAY_* variables (the instance's user data writes an --env-file, secrets included);
# the store lives on the mounted volume /var/lib/cxr-gateway.
FROM python:3.12-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service's decoding/privacy stack (core + model pins) plus the gateway's own pins, read from dev.txt so each
# version is written in one place.
COPY requirements/core.txt requirements/model.txt requirements/dev.txt /tmp/requirements/
RUN grep -E '^(pynetdicom|highdicom|cryptography|requests)==' /tmp/requirements/dev.txt > /tmp/requirements/gateway.txt \
    && pip install --only-binary=:all: -r /tmp/requirements/core.txt -r /tmp/requirements/model.txt \
       -r /tmp/requirements/gateway.txt \
    && rm -rf /tmp/requirements \
    && groupadd --system --gid 10001 cxr \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cxr \
    && mkdir -p /var/lib/cxr-gateway && chown 10001:10001 /var/lib/cxr-gateway

WORKDIR /app
COPY layers/model/python/cxr_model ./cxr_model
COPY clients/cli/cxr_cli ./cxr_cli
COPY gateway/cxr_gateway ./cxr_gateway
RUN python -m compileall -q /app

USER 10001:10001
ENV CXR_GATEWAY_STORE_PATH=/var/lib/cxr-gateway/store.sqlite3
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CXR_GATEWAY_HTTP_PORT', '8042'), timeout=5)"]
# SIGTERM: the listeners close; every item in hand is in the store and resumes at the next start.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "cxr_gateway"]
