FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY broker ./broker
RUN pip install --no-cache-dir '.[fast]'
RUN useradd --system --home /var/lib/wsbroker wsbroker && mkdir -p /var/lib/wsbroker \
    && chown wsbroker /var/lib/wsbroker
USER wsbroker
ENV WSBROKER_HOST=0.0.0.0 WSBROKER_DATA_DIR=/var/lib/wsbroker
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["wsbroker", "serve"]
