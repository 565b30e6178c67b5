# syntax=docker/dockerfile:1
# The orderflow image: one image for every process, chosen by the command
# (`orderflow api` by default; `orderflow worker`, `orderflow migrate`, the stand-ins...).
#
#   docker build -t orderflow:0.1.0 .
#   docker run --rm -p 8000:8000 --env-file orderflow.env orderflow:0.1.0

# --- build: install the project and its dependencies into a virtualenv -------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/orderflow
ENV PATH=/opt/orderflow/bin:$PATH

WORKDIR /src
# Only what `pip install .` needs: the project metadata and the packages it lists.
COPY pyproject.toml README.md ./
COPY orderflow/ orderflow/
COPY models/ models/
COPY workflows/ workflows/
COPY activities/ activities/
COPY api/ api/
COPY console/ console/
COPY providers/ providers/
COPY migrations/ migrations/
# Bytecode compiled here: the runtime user cannot write it, so each process would otherwise
# compile every module it imports at start.
RUN pip install . \
    && python -m compileall -q /opt/orderflow/lib \
    && cd / && python -c "import orderflow.cli"

# --- runtime: the virtualenv only, run as an unprivileged user ---------------------------------
FROM python:3.11-slim-bookworm AS runtime

# Inside a container every process listens on all interfaces (the host decides what to
# publish), and the payment and carrier stand-ins keep their state files in the data dir.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/orderflow/bin:$PATH \
    ORDERFLOW_API_HOST=0.0.0.0 \
    ORDERFLOW_DATA_DIR=/var/lib/orderflow

RUN groupadd --system --gid 10001 orderflow \
    && useradd --system --uid 10001 --gid orderflow --no-create-home \
        --home-dir /var/lib/orderflow --shell /usr/sbin/nologin orderflow \
    && install -d -o orderflow -g orderflow -m 0750 /var/lib/orderflow

COPY --from=build /opt/orderflow /opt/orderflow

WORKDIR /var/lib/orderflow
# Numeric, so that platforms which enforce non-root can verify it without /etc/passwd.
USER 10001:10001

# api, payment stand-in, carrier stand-in
EXPOSE 8000 8101 8102

CMD ["orderflow", "api"]
