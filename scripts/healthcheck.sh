#!/bin/sh
# The container health check (Dockerfile HEALTHCHECK, docker-compose.yml):
# GETs PATH (default /healthz; /readyz also wants Redis) from the proxy in
# this container, reading the proxy's own settings from the environment:
# PROXY_PORT (8080 by default), PROXY_HOST (a wildcard is asked on loopback),
# and HTTPS when TLS_CERT_FILE and TLS_KEY_FILE are set (the certificate is
# not verified: this is the proxy's own listener, asked by address). POSIX
# sh and curl only, as in the runtime image.
path=${1:-/healthz}
port=$(printf '%s' "${PROXY_PORT:-8080}" | tr -d '[:space:]')
host=$(printf '%s' "${PROXY_HOST:-127.0.0.1}" | tr -d '[:space:]')
case $host in
  ""|0.0.0.0) host=127.0.0.1 ;;
  ::|::0) host="[::1]" ;;
  *:*) host="[$host]" ;;
esac
if [ -n "${TLS_CERT_FILE:-}" ] && [ -n "${TLS_KEY_FILE:-}" ]; then
  exec curl -fsS -k -o /dev/null --max-time 2 "https://$host:$port$path"
fi
exec curl -fsS -o /dev/null --max-time 2 "http://$host:$port$path"
