#!/usr/bin/env bash
# Installs the Debian packages the tests, demo and benchmarks need. Idempotent: it only
# installs what is missing, so every make target can call it. Go tools are not here:
# go.mod pins them (tool directives) and `go tool` or `go build` fetches them.
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
