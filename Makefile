# redis-proxy: the two commands are `make run` and `make test`.
SHELL := /bin/bash
BIN := target/release/redis-proxy
IMAGE := redis-proxy

.PHONY: run build test check seed smoke stop clean bench fuzz soak docker-build docker-up docker-test

## run: build, make sure the Redis in .env answers (starting a local one if needed), serve
run: build
	@scripts/ensure-redis.sh
	$(BIN)

## build: the release binary
build:
	cargo build --release

## test: every test; starts its own throwaway redis-servers on free ports
test:
	@source scripts/lib.sh && ensure_command redis-server redis-server && ensure_command redis-cli redis-tools && ensure_command tmux tmux && ensure_command openssl openssl && ensure_command curl curl && ensure_command chromium chromium && ensure_python_module redis redis && ensure_python_module yaml pyyaml && ensure_command prometheus prometheus && ensure_command systemd-analyze systemd && ensure_node_module redis redis@5 && ensure_node_module ioredis ioredis@5
	cargo test --release --features test-hooks

## check: formatting, lints and the alert rules (with their unit tests), as CI wants them
check:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	@source scripts/lib.sh && ensure_command promtool prometheus
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml

## seed: write seeded_key1..N into the configured Redis (N=100 by default)
seed:
	@scripts/ensure-redis.sh
	scripts/seed.sh $(or $(N),100)

## smoke: curl checks against a running proxy (with a key of its own in Redis)
smoke:
	scripts/smoke.sh

## stop: stop the redis-server that `make run` started, if any
stop:
	@if [ -f .redis-local/redis.pid ]; then \
		kill "$$(cat .redis-local/redis.pid)" 2>/dev/null && echo "stopped local redis-server" || true; \
		rm -f .redis-local/redis.pid; \
	else echo "no local redis-server to stop"; fi

## bench: throughput and latency table (wrk, redis-benchmark; loopback only)
bench: build
	scripts/bench.sh

## fuzz: each fuzz target for FUZZ_SECONDS (default 60); installs cargo-fuzz if missing.
## cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	@for target in resp_parse http_query; do \
		echo "== fuzzing $$target for $(FUZZ_SECONDS)s"; \
		RUSTC_BOOTSTRAP=1 cargo fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## soak: 5 minutes of mixed HTTP and RESP load while Redis is rewritten and restarted
soak: build
	scripts/soak.sh

clean: stop
	cargo clean
	rm -rf .redis-local

docker-build:
	docker build -t $(IMAGE) .

docker-up:
	docker compose up --build

## docker-test: the test suite inside the image's build stage (needs a Docker engine)
docker-test:
	docker build --target test -t $(IMAGE)-test .
