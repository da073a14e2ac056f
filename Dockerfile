# One image for every Smart110 service; the command chooses the service:
#   docker run IMAGE services.intake serve      (or migrate, seed)
# Kubernetes passes the same as container args (k8s/base/<svc>/deployment.yaml).
# Swagger UI for the gateway's /docs, installed from web/package-lock.json as `make setup` does; the
# gateway pod's init container copies it out of this image (k8s/base/gateway/deployment.yaml), as it does
# the web front-end, built by `make web` before `docker build`.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/app/gen:/app

WORKDIR /app

# The same pinned set as `make run` (requirements.txt, installed with --no-deps).
COPY requirements.txt .
RUN pip install --no-deps -r requirements.txt && pip check

COPY protos/ protos/
# What `make proto` does: Python code for the protos into gen/.
RUN set -eu; \
    GOOGLE=$(python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))'); \
    WKT=$(python -c 'import grpc_tools, os; print(os.path.join(grpc_tools.__path__[0], "_proto"))'); \
    mkdir -p gen; \
    python -m grpc_tools.protoc -I protos -I "$GOOGLE" -I "$WKT" \
      --python_out=gen --pyi_out=gen --grpc_python_out=gen $(find protos -name '*.proto' | sort)

COPY services/ services/
COPY sampledata/ sampledata/
COPY --from=web /web/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
    /web/node_modules/swagger-ui-dist/swagger-ui.css web/docs/
# The built web front-end (`make web`: build/web/), which the gateway serves at /: the same files the
# gateway's config was rendered from (tools/k8s_check.py lists them and records their digests; the
# gateway pod's init container `web` checks them and copies them out of this image).
COPY build/web/ web/app/

RUN groupadd --system --gid 10001 smart110 \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin smart110
USER 10001:10001

EXPOSE 50051 50052 50053 50054 50055 8053 9464
ENTRYPOINT ["python", "-m"]
CMD ["services.intake", "serve"]
