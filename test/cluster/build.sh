#!/usr/bin/env bash
# Builds (or reuses) the test control plane's binaries: kube-apiserver, etcd, kubectl and helm, from the Go
# modules in this directory, into a cache outside the repository keyed by the go.sum files:
#
#   ${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/cluster/<key>/bin/{kube-apiserver,etcd,kubectl,helm}
#
# Progress goes to stderr; the last line on stdout is the bin directory, which is how
# controlplane.ts finds the binaries (so the cache layout is written down only here).
# A build goes into a temporary directory that is renamed to bin/ only after all three binaries
# and the stamp file exist, so an interrupted build is never taken for a complete one.
#
#   test/cluster/build.sh           build if needed, print the bin directory
#   test/cluster/build.sh --print   print the bin directory if it is complete, else exit 1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=$SECONDS

log() { printf '[cluster build %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

modver() { # modver <go.mod> <module>: the version that go.mod requires
  awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}
k8s_version="$(modver "$here/go.mod" k8s.io/kubernetes)"
etcd_version="$(modver "$here/go.mod" go.etcd.io/etcd/server/v3)"
helm_version="$(modver "$here/helm/go.mod" helm.sh/helm/v4)"
[[ -n "$k8s_version" && -n "$etcd_version" && -n "$helm_version" ]] || die "cannot read the pinned versions from go.mod"
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"

apiserver_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"
helm_ldflags="-X helm.sh/helm/v4/internal/version.version=$helm_version -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
strip_ldflags="-s -w" # no symbol table or DWARF: a third of the size, faster to link

# The cache key covers everything that decides what gets built: both module graphs (go.sum), the
# pinned versions and replace lines (go.mod), the etcd main package and the build flags. Tool
# binaries only, so the Go toolchain version is deliberately not part of the key.
key="$( (cat "$here/go.mod" "$here/go.sum" "$here/helm/go.mod" "$here/helm/go.sum" "$here/cmd/etcd/main.go"
  echo "-trimpath $strip_ldflags $apiserver_ldflags $helm_ldflags") | sha256sum | cut -c1-16)"
root="${VELOFLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veloflux}/cluster/$key"
bin="$root/bin"

complete() {
  [[ -f "$bin/.complete" && -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/kubectl" && -x "$bin/helm" ]]
}

if complete; then
  [[ "${1:-}" == "--print" ]] || log "reusing $bin ($(cat "$bin/.complete"))"
  echo "$bin"
  exit 0
fi
[[ "${1:-}" == "--print" ]] && exit 1

command -v go >/dev/null || die "go is not on PATH; the control plane is built from Go modules (Go >= 1.26)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"

mkdir -p "$root"
tmp="$(mktemp -d "$root/building.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "building kube-apiserver and kubectl $k8s_version, etcd $etcd_version, helm $helm_version with $(go env GOVERSION) into $bin"
log "a first build downloads about 1 GB of modules and compiles for several minutes; later runs reuse it"

# compile <step> <module dir> <output> <package> <ldflags>: go build, printing a line every 100
# packages compiled (go build -v names each package as it finishes) and every 50 modules downloaded,
# so a long build shows progress; errors pass through as they are.
compile() {
  local step="$1" dir="$2" out="$3" pkg="$4" ldflags="$5" t0=$SECONDS
  log "$step: go build $pkg"
  (cd "$dir" && nice -n 10 go build -v -trimpath -ldflags "$strip_ldflags $ldflags" -o "$out" "$pkg" 2>&1) |
    {
      local n=0 d=0 line
      while IFS= read -r line; do
        if [[ "$line" == "go: downloading "* ]]; then
          d=$((d + 1))
          if ((d % 50 == 1)); then log "$step: downloading modules ($d so far, now ${line#go: downloading })"; fi
        elif [[ "$line" == *:* || "$line" == *" "* ]]; then
          printf '%s\n' "$line" >&2 # compiler errors and other messages, as they are
        else
          n=$((n + 1))
          if ((n % 100 == 0)); then log "$step: $n packages compiled"; fi
        fi
      done
    }
  [[ -x "$out" ]] || die "$step: go build did not produce $out"
  log "$step: done in $((SECONDS - t0))s"
}

compile "1/4 etcd" "$here" "$tmp/etcd" ./cmd/etcd ""
compile "2/4 kube-apiserver" "$here" "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$apiserver_ldflags"
# kubectl for the tests of commands that shell out to it (veloflux setup --apply); same module, so nearly free.
compile "3/4 kubectl" "$here" "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl "$apiserver_ldflags"
compile "4/4 helm" "$here/helm" "$tmp/helm" helm.sh/helm/v4/cmd/helm "$helm_ldflags"

echo "kube-apiserver and kubectl $k8s_version, etcd $etcd_version, helm $helm_version, $(go env GOVERSION), built in $((SECONDS - started))s" >"$tmp/.complete"
# rename is atomic; if a concurrent build finished first, keep its result and drop ours.
if ! mv -T "$tmp" "$bin" 2>/dev/null; then
  complete || die "could not move the build into $bin"
fi
trap - EXIT
rm -rf "$tmp"
log "built in $((SECONDS - started))s: $bin"
echo "$bin"
