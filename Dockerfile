# syntax=docker/dockerfile:1
#
# llm-shadow: the sidecar image.
#
# Three stages: `base` pins the Python image once; `builder` installs the project into a
# virtualenv at /opt/venv (dependencies first, read from pyproject.toml, so editing the
# source reuses the dependency layer); the final stage copies only that virtualenv plus
# the default config.json and policies/. pip is removed from the virtualenv and no
# compiler or build cache reaches the final image: every dependency ships a manylinux wheel.
#
# Runtime contract (the Helm chart relies on it, tests/test_dockerfile.py checks it):
#   user        10001:10001 (numeric, so Kubernetes can verify runAsNonRoot)
#   config      /etc/llm-shadow/config.json (also $LLM_SHADOW_CONFIG, so `kubectl exec ...
#               -- llm-shadow status` finds it), policies in /etc/llm-shadow/policies/
#   ports       8787 proxy (binds 127.0.0.1 by default), 8788 admin
#   filesystem  nothing is written at run time: a read-only root filesystem works
#   signals     exec-form ENTRYPOINT: `llm-shadow` is PID 1 and receives SIGTERM itself
#
# Build: docker build -t llm-shadow:0.1.0 .

FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1


FROM base AS builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv
WORKDIR /build

# Dependencies only, from the project's own metadata (plus the `fast` extra: uvloop).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['fast']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# The project itself (.dockerignore lets only what the package needs into the context).
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && pip uninstall --yes pip \
    && mkdir -p policies


FROM base AS runtime
LABEL org.opencontainers.image.title="llm-shadow" \
      org.opencontainers.image.description="Sidecar proxy that shadows or diverts a share of a service's LLM calls to an orchestrator and compares the answers" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 llm-shadow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin llm-shadow

COPY --from=builder /opt/venv /opt/venv
# Owned by root and read-only for the service user: configuration is data, not state.
COPY --from=builder /build/config.json /etc/llm-shadow/config.json
COPY --from=builder /build/policies /etc/llm-shadow/policies

ENV PATH=/opt/venv/bin:$PATH \
    LLM_SHADOW_CONFIG=/etc/llm-shadow/config.json

USER 10001:10001
WORKDIR /etc/llm-shadow
EXPOSE 8787 8788
ENTRYPOINT ["llm-shadow"]
CMD ["serve", "--config", "/etc/llm-shadow/config.json"]
