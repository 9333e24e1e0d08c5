# The coassess image (bot and web console): Python 3.11, the package, compiled catalogs.
FROM python:3.11-slim
WORKDIR /app
# espeak-ng speaks questions to people who cannot read; libsndfile writes the OGG/Opus voice notes;
# Pango and DejaVu (Latin, Cyrillic, Arabic script) let WeasyPrint print the report as PDF.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng libsndfile1 \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md babel.cfg ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY locales ./locales
COPY analysis ./analysis
COPY web ./web
COPY examples ./examples
RUN pip install --no-cache-dir . && python -m locales compile
USER nobody
ENTRYPOINT ["coassess"]
CMD ["webhook", "--host", "0.0.0.0", "--port", "8080"]
