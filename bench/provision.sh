#!/usr/bin/env bash
# What `make bench` needs beyond the venv: wrk (the one HTTP load generator) and Redis on
# 127.0.0.1:6379 (the Redis store's rows), from Debian's packages as .ci/run gets Chromium.
# Never fatal: what cannot be had here is reported by bench/run.py as "not measured".
set -uo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing ${missing[*]} from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null \
            || echo "bench: could not install ${missing[*]}" >&2
    else
        echo "bench: ${missing[*]} missing (as root: apt-get install ${missing[*]});" \
            "the rows that need them will read 'not measured'" >&2
    fi
fi

if command -v redis-server >/dev/null 2>&1 \
    && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        >/dev/null
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
exit 0
