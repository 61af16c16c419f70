# The Action Log Service image: slim Python, a non-root user, migrations on start.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# /srv first on the path: the service runs from /srv/app, beside alembic.ini and alembic/
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=2
RUN groupadd --system actionlog && useradd --system --gid actionlog --home /srv actionlog
COPY --from=build /install /usr/local
WORKDIR /srv
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
RUN chown -R actionlog:actionlog /srv
USER actionlog
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)" || exit 1
# `serve` applies the migrations, then runs uvicorn with $WORKERS workers.
ENTRYPOINT ["actionlog"]
CMD ["serve"]
