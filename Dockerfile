# The coassess bot image: Python 3.11, the package, compiled catalogs.
FROM python:3.11-slim
WORKDIR /app
# espeak-ng: the offline voice that reads questions aloud where nothing is recorded
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md babel.cfg ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY locales ./locales
COPY analysis ./analysis
COPY examples ./examples
RUN pip install --no-cache-dir . && python -m locales compile
USER nobody
ENTRYPOINT ["coassess"]
CMD ["webhook", "--host", "0.0.0.0", "--port", "8080"]
