# EC2 infer worker image: CPU-only onnxruntime (no torch), weights + ONNX export baked in, non-root.
# Build from the repository root once the model build step has produced layers/model/weights/*.onnx from real weights:
#   python -m cxr_model_build.build --model-dir layers/model/weights   # fetches and verifies them (or --weights-from PATH)
#   docker build --platform linux/amd64 -t cxr-worker .
# The build refuses a random-init stand-in; weights other than the published file need
#   --build-arg ALLOW_PROVIDED_WEIGHTS=1 (they are then flagged "provided" in every result).
# Settings come from the environment as template.yaml declares them (the launch template writes an --env-file).
FROM python:3.12-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements/core.txt requirements/model.txt /tmp/requirements/
RUN pip install --only-binary=:all: -r /tmp/requirements/core.txt -r /tmp/requirements/model.txt \
    && rm -rf /tmp/requirements \
    && groupadd --system --gid 10001 cxr \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cxr

# The onnxruntime engine needs the ONNX export and its provenance record only (no torch weights file).
COPY layers/model/weights/*.onnx layers/model/weights/*.weights.json /opt/weights/
WORKDIR /app
COPY layers/core/python/cxr_core ./cxr_core
COPY layers/model/python/cxr_model ./cxr_model
COPY worker/cxr_worker ./cxr_worker
ARG ALLOW_PROVIDED_WEIGHTS=0
# Reads the ONNX export's metadata: a stand-in (or unverified weights, unless allowed) fails the image build.
RUN python -m cxr_model.deploy_check /opt/weights $([ "$ALLOW_PROVIDED_WEIGHTS" = 1 ] && echo --allow-provided) \
    && python -m compileall -q /app

USER 10001:10001
# Healthy = all WORKER_PROCESSES workers alive, none restarting in a loop, and the tables, bucket, queue and model
# answering the same readiness function as GET /v1/ops/ready (see worker/cxr_worker/healthcheck.py).
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-m", "cxr_worker.healthcheck"]
# SIGTERM: every worker finishes the batch in hand, settles its messages and exits.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "cxr_worker"]
