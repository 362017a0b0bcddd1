# One image for every uns-hub component; compose.yaml picks the command per service.
FROM python:3.11-slim
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY uns ./uns
COPY bridges ./bridges
COPY model ./model
COPY demo ./demo
COPY hub ./hub
COPY broker.yaml ./
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH" UNS_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["uns"]
CMD ["up"]
