# Compress and Compare, served by gunicorn. Build: docker build -t cnc .
# (CPU torch. CUDA torch: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128, or the cuXXX index for your driver)
# Run:  docker run -p 8050:8050 -v cnc-cache:/data/cache -v $PWD/my-exp:/data/experiment \
#         -e CNC_CONFIG=/data/experiment/config.yaml cnc
FROM python:3.11-slim

# torch comes from PyTorch's own wheel index: the default index serves the multi-GB CUDA build
# even with the version pinned. The pin itself is read from requirements.txt.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CNC_CACHE_DIR=/data/cache \
    CNC_PORT=8050 \
    CNC_WORKERS=2 \
    CNC_THREADS=4

WORKDIR /app
COPY requirements.txt .
RUN pip install --index-url "${TORCH_INDEX}" "$(grep -E '^torch==' requirements.txt)"
RUN pip install -r requirements.txt

COPY pyproject.toml README.md app.py ./
COPY cnc ./cnc
RUN pip install --no-deps .

RUN useradd --create-home --uid 1000 cnc && mkdir -p /data/cache && chown -R cnc /data
USER cnc
VOLUME ["/data/cache"]
EXPOSE 8050

HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CNC_PORT', '8050'), timeout=4)"

# Precompute once (resumable, skips what is cached), then serve with several workers.
CMD ["sh", "-c", "cnc --precompute-only && exec gunicorn --bind 0.0.0.0:${CNC_PORT} --workers ${CNC_WORKERS} --threads ${CNC_THREADS} --timeout 120 cnc.app.wsgi:server"]
