#!/usr/bin/env bash
# Installs the system packages and Go tools the build, tests, demo and benchmarks need.
# Idempotent: it only installs what is missing, so every make target can call it.
set -euo pipefail

# Debian packages, keyed by a command (or the path of a program) each one provides.
declare -A packages=(
  [ip]=iproute2
  [iptables]=iptables
  [nft]=nftables
  [conntrack]=conntrack
  [curl]=curl
  [socat]=socat
)
case "${1:-}" in
  bench) packages+=([squid]=squid [haproxy]=haproxy [iperf3]=iperf3 [wrk]=wrk) ;;
  # Images and their podman end-to-end test; the reference bridge plugin gives the
  # test's containers their cluster interface, as the cluster network would.
  images) packages+=([buildah]=buildah [podman]=podman [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins) ;;
esac

missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${packages[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go tools at pinned versions: cnitool drives the plugin in the tests and the demo;
# staticcheck is make lint's linter.
declare -A tools=(
  [cnitool]=github.com/containernetworking/cni/cnitool@v1.3.1
  [staticcheck]=honnef.co/go/tools/cmd/staticcheck@2025.1.1
)
gobin=$(go env GOPATH)/bin
for tool in "${!tools[@]}"; do
  if [ ! -x "$gobin/$tool" ]; then
    echo "install-deps: go install ${tools[$tool]}"
    go install "${tools[$tool]}"
  fi
done
