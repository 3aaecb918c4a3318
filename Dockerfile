# p2p-interview: one image for the web node (`serve`) and the speech workers (`worker`).
# openai-whisper is left out (torch is large): add `pip install '.[whisper]'` if you use it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ORT_DISABLE_TELEMETRY=1 \
    HF_HUB_OFFLINE=1 \
    DATA_DIR=/var/lib/p2p-interview \
    HOST=0.0.0.0 \
    PORT=8080

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/app app \
    && mkdir -p /var/lib/p2p-interview && chown app /var/lib/p2p-interview

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rooms ./rooms
COPY signaling ./signaling
COPY media ./media
COPY web ./web
COPY transcription ./transcription
COPY assistant ./assistant
RUN pip install .

USER app
VOLUME ["/var/lib/p2p-interview"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["p2p-interview", "serve", "--migrate"]
