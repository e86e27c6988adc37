# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole tree (less what .dockerignore leaves out): the tests read the
# README, the Makefile and scripts (the quick start walk), docs and the
# deployment files (dashboard, alert rules, unit, sidecar, compose profile).
COPY . .
RUN cargo build --release --locked

# Test stage (`make docker-test`): the whole suite, with everything the tests
# drive installed as `make test` would install it (scripts/lib.sh): Redis and
# its tools, tmux, openssl, curl, headless Chromium, Prometheus and promtool,
# systemd-analyze, ss and prlimit, python3 with redis-py and yaml, and node
# with node-redis in target/node (where the client-cache tests look).
FROM build AS test
RUN apt-get update && apt-get install -y --no-install-recommends \
        redis-server redis-tools tmux openssl curl ca-certificates chromium \
        prometheus systemd iproute2 procps util-linux \
        python3 python3-pip python3-yaml nodejs npm \
    && rm -rf /var/lib/apt/lists/* \
    && pip3 install --break-system-packages redis
RUN mkdir -p target/node \
    && npm install --silent --no-audit --no-fund --prefix target/node redis@5
RUN promtool check rules deploy/prometheus/alerts.yml \
    && promtool test rules deploy/prometheus/alerts.test.yml
RUN cargo test --release --locked --features test-hooks

# Runtime stage: the binary alone, run as a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home proxy
COPY --from=build /src/target/release/redis-proxy /usr/local/bin/redis-proxy
COPY --from=build /src/scripts/healthcheck.sh /usr/local/bin/redis-proxy-healthcheck
USER proxy
ENV PROXY_HOST=0.0.0.0 \
    PROXY_PORT=8080 \
    RESP_PORT=6380 \
    REDIS_ADDRESS=redis:6379 \
    RUST_LOG=info
EXPOSE 8080 6380
# Follows PROXY_PORT, PROXY_HOST and the TLS variables as they are when the
# container runs (https with TLS_CERT_FILE and TLS_KEY_FILE): scripts/healthcheck.sh.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/redis-proxy-healthcheck", "/healthz"]
ENTRYPOINT ["/usr/local/bin/redis-proxy"]
