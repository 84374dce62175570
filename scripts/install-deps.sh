#!/usr/bin/env bash
# Installs the Debian packages the tests, demo and benchmarks need. Idempotent: it only
# installs what is missing, so every make target can call it. Go tools are not here:
# go.mod pins them (tool directives) and `go tool` or `go build` fetches them.
set -euo pipefail

# Debian packages, keyed by a command (or the absolute path of a file) each one provides.
declare -A packages=(
  [ip]=iproute2
  [iptables]=iptables
  [nft]=nftables
  [conntrack]=conntrack
  [curl]=curl
  [socat]=socat
)
case "${1:-}" in
  # The peers the proxies are measured against, and the load generators.
  bench) packages+=([squid]=squid [haproxy]=haproxy [nginx]=nginx
    [/usr/lib/nginx/modules/ngx_stream_module.so]=libnginx-mod-stream [iperf3]=iperf3 [wrk]=wrk) ;;
  # Images and their podman end-to-end test; the reference bridge plugin gives the
  # test's containers their cluster interface, as the cluster network would.
  images) packages+=([buildah]=buildah [podman]=podman [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins) ;;
esac

missing=()
for cmd in "${!packages[@]}"; do
  case "$cmd" in
    /*) [ -e "$cmd" ] || missing+=("${packages[$cmd]}") ;;
    *) command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${packages[$cmd]}") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
