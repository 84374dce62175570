#!/usr/bin/env bash
# Prints a directory holding etcd and kube-apiserver, for controller-runtime's envtest
# (KUBEBUILDER_ASSETS). Neither can be downloaded as a binary here, so:
#   - etcd is Debian's etcd-server (3.4), which kube-apiserver 1.31 accepts;
#   - kube-apiserver is built from the Go module proxy in a throwaway module that
#     requires k8s.io/kubernetes and replaces each of its ./staging modules by the
#     published k8s.io/<name> of the same release (k8s.io/kubernetes cannot be built
#     with `go install`: it has replace directives, and its module zip lacks ./staging).
# The binaries are cached outside the repository, keyed by version, so only the first
# run pays for the build (about 15 minutes on 2 cores); the main module never
# requires k8s.io/kubernetes. Progress goes to stderr; stdout is the directory only.
set -euo pipefail
version=${KUBE_APISERVER_VERSION:-v1.31.14}
cache=${EGRESS_ROUTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-router}/envtest/$version
say() { echo "envtest-assets: $*" >&2; }

if [ ! -x /usr/bin/etcd ]; then
  say "installing Debian's etcd-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
mkdir -p "$cache"
ln -sf /usr/bin/etcd "$cache/etcd"
# One build at a time: a second caller (a parallel test run) waits for the first's.
exec 9>"$cache/.lock"
flock 9

if [ ! -x "$cache/kube-apiserver" ]; then
  say "building kube-apiserver $version into $cache (once; about 15 minutes on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  cat >main.go <<'GO'
// Command kube-apiserver is the upstream API server, built for tests.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  go mod init egress-router.test/kube-apiserver >/dev/null 2>&1
  go mod edit -require "k8s.io/kubernetes@$version"
  # k8s.io/kubernetes' own go.mod lists its staging modules as "k8s.io/x => ./staging/...".
  upstream=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$upstream")
  [ -n "$staging" ] || { say "no staging modules found in $upstream"; exit 1; }
  for m in $staging; do go mod edit -replace "$m=$m@v0${version#v1}"; done
  go mod tidy >&2
  go build -trimpath -o "$cache/kube-apiserver.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" .
  mv "$cache/kube-apiserver.tmp" "$cache/kube-apiserver"
fi
echo "$cache"
