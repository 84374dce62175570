#!/usr/bin/env bash
# make demo [MODE=redirect|http-proxy|dns-proxy]: the egress router at work in each
# mode (all three by default), entirely inside network namespaces this script creates
# (and removes on any exit), with documentation addresses only.
#
#   client ──veth── node (bridge "cluster") ──veth── router pod (eth0)
#                   node: ext0 ──veth── gateway ──veth── destination
#   router pod: net1 = macvlan on ext0, 192.0.2.99, added by the plugin via cnitool
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN holds the binaries (make demo builds them, cnitool included, into bin/).
bin=$(realpath "${BIN:-bin}")
modes=${1:-redirect http-proxy dns-proxy}
for m in $modes; do
  case $m in redirect | http-proxy | dns-proxy) ;; *) echo "unknown MODE $m (redirect, http-proxy or dns-proxy)" >&2; exit 2 ;; esac
done
run=er$$ # unique per run: names of namespaces, links and the CNI network
net=egress-demo-$run
tmp=$(mktemp -d)
servers=() # PIDs of the destination server and the proxies, stopped by cleanup

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { local n=$1; shift; nsenter --net="/run/netns/$run-$n" -- "$@"; }
# The node policy the cluster admin would install on the node (see the README): the
# plugin reads it from EGRESS_ROUTER_NODE_POLICY here, instead of the node's fixed path.
cni() { ns node env CNI_PATH="$bin" NETCONFPATH="$tmp" CNI_IFNAME=net1 EGRESS_ROUTER_NODE_POLICY="$tmp/node-policy.json" "$bin/cnitool" "$@" "$net" "/run/netns/$run-pod"; }
# background runs a server in a namespace; nsenter execs it, so $! is the server itself.
background() { local n=$1; shift; nsenter --net="/run/netns/$run-$n" -- "$@" & servers+=($!); }
# listening waits until something listens on a TCP port in a namespace.
listening() {
  for _ in $(seq 1 50); do ns "$1" ss -ltn "sport = :$2" | grep -q LISTEN && return; sleep 0.1; done
  echo "  nothing listens on port $2 in $1"; return 1
}

cleanup() {
  status=$?
  [ -f "$tmp/added" ] && cni del >/dev/null 2>&1 || true
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for n in client pod gateway dest node; do ip netns del "$run-$n" 2>/dev/null || true; done
  rm -rf "$tmp"
  if [ "$status" -eq 0 ]; then say "Done: everything the demo created is gone."; else say "The demo FAILED (exit $status); everything it created is removed."; fi
}
trap cleanup EXIT

say "Building the network: client, node, router pod, gateway and destination namespaces"
for n in node client pod gateway dest; do ip netns add "$run-$n"; ns "$n" ip link set lo up; done
ns node sysctl -qw net.ipv4.ip_forward=1
ns node ip link add cluster type bridge
ns node ip addr add 10.128.0.1/24 dev cluster
ns node ip link set cluster up
attach() { # namespace, node-side veth, cluster address: a pod-like namespace on the bridge
  ns node ip link add "$2" type veth peer name eth0 netns "$run-$1"
  ns node ip link set "$2" master cluster up
  ns "$1" ip addr add "$3/24" dev eth0
  ns "$1" ip link set eth0 up
  ns "$1" ip route add default via 10.128.0.1
}
attach client vc$run 10.128.0.10
attach pod vp$run 10.128.0.20
ns node ip link add ext0 type veth peer name lan netns "$run-gateway"
ns node ip addr add 192.0.2.10/24 dev ext0
ns node ip link set ext0 up
ns node ip route add default via 192.0.2.1
ns gateway sysctl -qw net.ipv4.ip_forward=1
ns gateway ip link add wan type veth peer name wan netns "$run-dest"
ns gateway ip addr add 192.0.2.1/24 dev lan
ns gateway ip addr add 198.51.100.1/24 dev wan
ns gateway ip link set lan up
ns gateway ip link set wan up
ns gateway ip route add 203.0.113.0/24 via 198.51.100.2
ns gateway ip route add 10.128.0.0/24 via 192.0.2.10
ns dest ip addr add 198.51.100.2/24 dev wan
ns dest ip link set wan up
ns dest ip route add default via 198.51.100.1
ns dest ip route add local 203.0.113.0/24 dev lo

say "The node policy: attachments may use the master ext0 and 192.0.2.0/24, and log in $tmp/log"
cat >"$tmp/node-policy.json" <<POLICY
{ "masters": ["ext0"], "addressRanges": ["192.0.2.0/24"], "logDir": "$tmp/log" }
POLICY
sed 's/^/    /' "$tmp/node-policy.json"

say "The destination 203.0.113.25 accepts only the reserved source 192.0.2.99 and answers with the source it saw"
ns dest nft -f - <<'NFT'
table inet demo {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 203.0.113.0/24 ip saddr != 192.0.2.99 meta l4proto tcp reject with tcp reset
  }
}
NFT
# It reads the request head (an HTTP request's, or nothing from a plain client), then
# answers in HTTP, so curl and plain TCP clients can both show the line.
cat >"$tmp/answer.sh" <<'SH'
cr=$(printf '\r')
while read -r line && [ "${line%"$cr"}" ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\ndestination: you reach me from %s\n' "$SOCAT_PEERADDR"
SH
background dest socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"sh $tmp/answer.sh"
listening dest 80

# attach writes the mode's configuration, ADDs it with cnitool and shows the result.
attach() {
  local mode=$1 extra=$2
  cat >"$tmp/$net.conf" <<CONF
{
  "cniVersion": "1.0.0", "name": "$net", "type": "egress-router", "mode": "$mode",
  "interfaceArgs": { "master": "ext0" },
  "ip": { "addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1"$extra },
  "log_file": "$tmp/log/egress-router.log", "log_level": "info"
}
CONF
  say "[$mode] Adding the egress router to the router pod with cnitool (plugin $bin/egress-router)"
  sed 's/^/    /' "$tmp/$net.conf"
  cni add >"$tmp/result.json"
  touch "$tmp/added"
  echo "  net1 in the router pod:"
  ns pod ip -brief addr show net1 | sed 's/^/    /'
  cni check
  echo "  cnitool check: the live namespace matches the result and the configuration"
}

# detach DELs the attachment and shows it is gone.
detach() {
  say "[$1] Deleting the attachment with cnitool"
  cni del
  rm "$tmp/added"
  if ns pod ip link show net1 >/dev/null 2>&1; then echo "  net1 is still there"; exit 1; fi
  echo "  net1, its routes and its rules are gone from the router pod"
}

# stop_proxies stops the proxies a mode started (the destination server stays).
stop_proxies() {
  for pid in "${servers[@]:1}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  servers=("${servers[0]}")
}

# expect_reserved fails the demo unless the destination's answer names 192.0.2.99.
expect_reserved() {
  echo "  $1"
  [[ "$1" == *"from 192.0.2.99"* ]] || { echo "  the destination did not see the reserved address"; exit 1; }
}

demo_redirect() {
  attach redirect ', "destinations": ["80 tcp 203.0.113.25"]'
  say "[redirect] The client connects to the router pod (10.128.0.20:80); the kernel sends it on from 192.0.2.99"
  expect_reserved "$(ns client socat -T3 - TCP:10.128.0.20:80 </dev/null | tail -n1)"
  detach redirect
}

demo_http_proxy() {
  attach http-proxy ' }, "httpProxy": { "destinations": ["203.0.113.25"]'
  background pod "$bin/egress-http-proxy" -config "$tmp/$net.conf" -listen :8080 -metrics-listen 127.0.0.1:9090
  listening pod 8080
  say "[http-proxy] curl in the client, with http_proxy=http://10.128.0.20:8080, fetches http://203.0.113.25/"
  expect_reserved "$(ns client env http_proxy=http://10.128.0.20:8080 curl -sS --max-time 5 http://203.0.113.25/)"
  say "[http-proxy] A destination no rule allows is refused by the proxy"
  code=$(ns client env http_proxy=http://10.128.0.20:8080 curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://203.0.113.26/)
  echo "  http://203.0.113.26/ -> HTTP $code"
  [ "$code" = 403 ]
  stop_proxies
  detach http-proxy
}

demo_dns_proxy() {
  # An IP literal keeps the demo free of a DNS server; a host name line works the same
  # way, re-resolved at run time by its TTL.
  attach dns-proxy ' }, "dnsProxy": { "destinations": ["8080 203.0.113.25 80"]'
  background pod "$bin/egress-dns-proxy" -config "$tmp/$net.conf" -metrics-listen 127.0.0.1:9091
  listening pod 8080
  say "[dns-proxy] The client connects to the router pod (10.128.0.20:8080); the forwarder relays it from 192.0.2.99"
  expect_reserved "$(ns client socat -T3 - TCP:10.128.0.20:8080 </dev/null | tail -n1)"
  stop_proxies
  detach dns-proxy
}

say "The client going straight to 203.0.113.25 is refused: only the reserved address is whitelisted"
if direct=$(ns client socat -T3 - TCP:203.0.113.25:80 </dev/null 2>&1); then
  echo "  unexpected: the direct connection got through: $direct"; exit 1
fi
echo "  refused: ${direct##*: }"

for mode in $modes; do
  "demo_${mode//-/_}"
done
echo
echo "  the plugin's log (log_file, one JSON line per event):"
sed 's/^/    /' "$tmp/log/egress-router.log"
