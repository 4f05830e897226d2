# syntax=docker/dockerfile:1
# One image for the operator and for the engine Jobs it starts:
#   operator:   node --max-semi-space-size=2 dist/controller/main.js   (the default command)
#   engine Job: node /app/dist/cli/main.js step <schema|copy|validate|rollback>
# Build:  docker build -t datamigration-operator:0.1.0 .
#
# The runtime stage is distroless (no shell, no package manager); RUNTIME_IMAGE may name another
# Node 24 image that has `node` on its PATH, such as node:24-bookworm-slim.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# --- build: compile TypeScript (src/ -> dist/) with the full dependency tree ---
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# --ignore-scripts: the base image has Node 24 already, so the `node` dev dependency's download
# script is not needed; no other dependency needs an install script to compile.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node_modules/.bin/tsc -p tsconfig.build.json

# --- deps: production dependencies only ---
FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# --- runtime ---
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="datamigration-operator" \
      org.opencontainers.image.description="Kubernetes operator and engine that migrate, copy, validate and cut over data between PostgreSQL and MySQL/MariaDB" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
# Distroless keeps node in /nodejs/bin; the engine Jobs call plain `node`, resolved through PATH.
ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin \
    NODE_ENV=production \
    HOME=/tmp
# package.json says "type": "module", which Node needs to load dist/ as ES modules.
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# A numeric user, so runAsNonRoot can be verified by the kubelet without /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node"]
CMD ["--max-semi-space-size=2", "dist/controller/main.js"]
