#!/usr/bin/env bash
# Builds the proxy and operator images from images/*/Dockerfile without a Docker engine: buildah (Debian package)
# with the vfs storage driver and chroot isolation. The Dockerfiles stay as they are for real registries; their base,
# node:<NODE_VERSION>-bookworm-slim, cannot be pulled here, so a stand-in is made first (base.sh: mmdebstrap of
# Debian bookworm, minbase variant with the slim image's path excludes, plus the Node binary the pinned `node`
# devDependency installs and the npm that this Node release bundles) and tagged with exactly that name.
#
# Everything lives outside the repository, under
#   ${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/images/
#     base-<key>.tar       the stand-in's root filesystem (key: base.sh, the Node binary, the npm version)
#     storage/  run/       buildah's image store (vfs) and its run root; layer cache of the Dockerfile steps
#     built-<image>        the build contexts (keys) of the last 3 builds, each image tagged ctx-<key> as well
# so a warm build reuses the base and every Dockerfile step whose inputs did not change (npm ci included).
# Progress goes to stderr; stdout's last line is the storage root, with which test/images finds the images.
#
#   images/tools/build.sh            ensure the tools (apt, as root), the base, then build both images
#   images/tools/build.sh proxy      one image only
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
started=$SECONDS
log() { printf '[images build %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(proxy operator)
for i in "${images[@]}"; do [[ -f "$repo/images/$i/Dockerfile" ]] || die "no images/$i/Dockerfile (images: proxy, operator)"; done

# Tools: Debian's buildah, mmdebstrap (base.sh) and runc (test/images runs the images with it;
# crun refuses a host whose cgroup v2 hierarchy has controllers in hybrid mode, runc uses the v1 hierarchies).
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v runc >/dev/null || need+=(runc)
if [[ ${#need[@]} -gt 0 ]]; then
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing ${need[*]} (Debian: apt-get install --no-install-recommends ${need[*]} uidmap); building images needs root"
  fi
  log "installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap >&2
fi
[[ "$(id -u)" == 0 ]] || die "buildah with chroot isolation and vfs runs as root here"

cache="${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/images"
mkdir -p "$cache"
bh() { buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs "$@"; }

node_version="$(node -p 'require(process.argv[1]).devDependencies.node' "$repo/package.json")"
for i in "${images[@]}"; do
  grep -q "^ARG NODE_VERSION=$node_version\$" "$repo/images/$i/Dockerfile" ||
    die "images/$i/Dockerfile's ARG NODE_VERSION differs from package.json's devDependencies.node ($node_version)"
done
base_ref="docker.io/library/node:$node_version-bookworm-slim"

# 1. the base stand-in, unless the store already has it from the same base tarball.
base_tar="$("$here/base.sh" "$cache" "$node_version")"
base_key="$(basename "$base_tar" .tar)"
if [[ "$(bh inspect --type image --format '{{index .ImageAnnotations "org.veloflux.base"}}' "$base_ref" 2>/dev/null)" != "$base_key" ]]; then
  log "importing $base_tar as $base_ref"
  ctr="$(bh from --pull=never scratch)"
  bh add "$ctr" "$base_tar" / >/dev/null
  # What the real node image configures (its docker-entrypoint.sh is replaced by the plain CMD; both Dockerfiles
  # set their own ENTRYPOINT).
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env "NODE_VERSION=$node_version" \
    --cmd node --annotation "org.veloflux.base=$base_key" --os linux --arch amd64 "$ctr"
  bh commit --quiet --rm "$ctr" "$base_ref" >/dev/null
else
  log "reusing $base_ref ($base_key)"
fi

# 2. the images, with buildah's layer cache: a step is rerun only when it or what it copies changed.
# The RUN steps' npm reaches the registry as this machine's npm does: its registry and CA file (a TLS-inspecting
# gateway's, say) go in as read-only build volumes (npm's global config, /usr/local/etc/npmrc), never into a layer.
volumes=()
npm_cafile="$(npm config get cafile 2>/dev/null || true)"
npm_registry="$(npm config get registry 2>/dev/null || true)"
if [[ -n "$npm_cafile" && "$npm_cafile" != null && -f "$npm_cafile" ]] || [[ -n "$npm_registry" ]]; then
  printf 'registry=%s\n' "${npm_registry:-https://registry.npmjs.org/}" >"$cache/npmrc"
  if [[ -n "$npm_cafile" && "$npm_cafile" != null && -f "$npm_cafile" ]]; then
    printf 'cafile=/usr/local/etc/veloflux-build-ca.pem\n' >>"$cache/npmrc"
    volumes+=(-v "$npm_cafile:/usr/local/etc/veloflux-build-ca.pem:ro")
  fi
  volumes+=(-v "$cache/npmrc:/usr/local/etc/npmrc:ro")
fi
n=0
for i in "${images[@]}"; do
  n=$((n + 1)); t0=$SECONDS
  # Each cached step still costs seconds with vfs: skip the build when nothing it reads changed since the last one:
  # the base, the Dockerfile, .dockerignore and every build-context path the Dockerfile COPYs (not --from a stage).
  mapfile -t srcs < <(awk '$1 == "COPY" && $2 !~ /^--from=/ { for (f = 2; f < NF; f++) if ($f !~ /^--/) print $f }' \
    "$repo/images/$i/Dockerfile" | sort -u)
  ctx_key="$( (echo "$base_key"; cd "$repo" && find "images/$i/Dockerfile" .dockerignore "${srcs[@]}" -type f \
    -not -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)" ||
    die "images/$i/Dockerfile copies a path that is missing: ${srcs[*]}"
  # Each build is also tagged ctx-<key>, so going back to a tree built before (another branch, a checkout) is a retag;
  # the newest few keys stay (built-<image>: one key a line, newest last).
  if bh inspect --type image "localhost/veloflux-$i:ctx-$ctx_key" >/dev/null 2>&1; then
    bh tag "localhost/veloflux-$i:ctx-$ctx_key" "localhost/veloflux-$i:dev"
    log "$n/${#images[@]} veloflux-$i: reusing the image built from this context ($ctx_key)"
    continue
  fi
  log "$n/${#images[@]} veloflux-$i: buildah build -f images/$i/Dockerfile"
  bh build --layers --pull=never --isolation chroot "${volumes[@]}" -f "$repo/images/$i/Dockerfile" -t "localhost/veloflux-$i:dev" "$repo" 2>&1 |
    while IFS= read -r line; do
      case "$line" in
        *STEP*|*"Using cache"*|COMMIT*|Error*|error*) log "$i: $line" ;;
        *) printf '    %s\n' "$line" >&2 ;;
      esac
    done
  [[ "${PIPESTATUS[0]}" == 0 ]] || die "veloflux-$i: buildah build failed"
  size="$(bh images --noheading --format '{{.Size}}' "localhost/veloflux-$i:dev" 2>/dev/null || echo '?')"
  bh tag "localhost/veloflux-$i:dev" "localhost/veloflux-$i:ctx-$ctx_key"
  { grep -vx "$ctx_key" "$cache/built-$i" 2>/dev/null || true; echo "$ctx_key"; } >"$cache/built-$i.new"
  head -n -3 "$cache/built-$i.new" | while IFS= read -r old; do bh rmi "localhost/veloflux-$i:ctx-$old" >/dev/null 2>&1 || true; done
  tail -n 3 "$cache/built-$i.new" >"$cache/built-$i" && rm -f "$cache/built-$i.new"
  log "$n/${#images[@]} veloflux-$i: done in $((SECONDS - t0))s, $size"
done
# Layers of earlier builds that no tag uses any more; the cache keeps what the current Dockerfiles hit.
bh rmi --prune >/dev/null 2>&1 || true # (only dangling images; the layer cache stays)
log "built in $((SECONDS - started))s (store: $cache/storage)"
echo "$cache/storage"
