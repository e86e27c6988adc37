# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock README.md ./
COPY vendor ./vendor
COPY src ./src
COPY tests ./tests
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked

# Test stage (`make docker-test`): the whole suite against a redis-server
# installed in the image.
FROM build AS test
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools tmux openssl curl python3-pip chromium \
    && rm -rf /var/lib/apt/lists/* \
    && pip3 install --break-system-packages redis
RUN cargo test --release --locked --features test-hooks

# Runtime stage: the binary alone, run as a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home proxy
COPY --from=build /src/target/release/redis-proxy /usr/local/bin/redis-proxy
USER proxy
ENV PROXY_HOST=0.0.0.0 \
    PROXY_PORT=8080 \
    RESP_PORT=6380 \
    REDIS_ADDRESS=redis:6379 \
    RUST_LOG=info
EXPOSE 8080 6380
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/redis-proxy"]
