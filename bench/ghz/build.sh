#!/usr/bin/env bash
# Builds (or reuses) ghz, the gRPC load generator of `npm run bench`, and the benchmark's gRPC backend
# (backend/main.go, grpc-go's health service) from the Go module pinned in this directory, into a cache outside the
# repository keyed by go.mod, go.sum and the backend's source:
#
#   ${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/ghz/<key>/bin/{ghz,grpc-backend}
#
# Progress goes to stderr; the last line on stdout is the bin directory (bench/grpc.ts reads it). A build goes
# into a temporary directory renamed into place only when complete.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/backend/main.go" | sha256sum | cut -c1-16)"
cache="${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/ghz"
bin="$cache/$key/bin"
if [[ -x "$bin/ghz" && -x "$bin/grpc-backend" ]]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "[ghz build] error: go is not installed" >&2; exit 1; }
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "[ghz build] building ghz into $cache/$key (a few minutes the first time)" >&2
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp/ghz" github.com/bojand/ghz/cmd/ghz) >&2
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp/grpc-backend" ./backend) >&2
mkdir -p "$cache/$key"
rm -rf "$cache/$key/bin"
mv "$tmp" "$cache/$key/bin"
trap - EXIT
echo "$bin"
