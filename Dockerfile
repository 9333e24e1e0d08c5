# The coassess image (bot and web console): Python 3.11, the package, compiled catalogs.
FROM python:3.11-slim
WORKDIR /app
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
