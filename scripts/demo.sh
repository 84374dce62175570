#!/usr/bin/env bash
# make demo: the egress router at work, entirely inside network namespaces this script
# creates (and removes on any exit), with documentation addresses only.
#
#   client ──veth── node (bridge "cluster") ──veth── router pod (eth0)
#                   node: ext0 ──veth── gateway ──veth── destination
#   router pod: net1 = macvlan on ext0, 192.0.2.99, added by the plugin via cnitool
set -euo pipefail
cd "$(dirname "$0")/.."
gobin=$(go env GOPATH)/bin
cnitool=$(command -v cnitool || echo "$gobin/cnitool")
run=er$$ # unique per run: names of namespaces, links and the CNI network
net=egress-demo-$run
tmp=$(mktemp -d)
servers=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { local n=$1; shift; nsenter --net="/run/netns/$run-$n" -- "$@"; }
cni() { ns node env CNI_PATH="$PWD/bin" NETCONFPATH="$tmp" CNI_IFNAME=net1 "$cnitool" "$@" "$net" "/run/netns/$run-pod"; }

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

say "The destination 203.0.113.25 accepts only the reserved source 192.0.2.99 and answers with the source it saw"
ns dest nft -f - <<'NFT'
table inet demo {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 203.0.113.0/24 ip saddr != 192.0.2.99 meta l4proto tcp reject with tcp reset
  }
}
NFT
# nsenter execs socat, so $! is the server itself and the cleanup can stop it.
nsenter --net="/run/netns/$run-dest" -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo "destination: you reach me from $SOCAT_PEERADDR"' &
servers+=($!)

say "Adding the egress router to the router pod with cnitool (plugin bin/egress-router, redirect mode)"
cat >"$tmp/$net.conf" <<CONF
{
  "cniVersion": "1.0.0", "name": "$net", "type": "egress-router", "mode": "redirect",
  "interfaceArgs": { "master": "ext0" },
  "ip": { "addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1",
          "destinations": ["80 tcp 203.0.113.25"] },
  "log_file": "$tmp/egress-router.log", "log_level": "info"
}
CONF
sed 's/^/    /' "$tmp/$net.conf"
cni add >"$tmp/result.json"
touch "$tmp/added"
echo "  the plugin's result:"
sed 's/^/    /' "$tmp/result.json"; echo
echo "  net1 in the router pod:"
ns pod ip -brief addr show net1 | sed 's/^/    /'
cni check
echo "  cnitool check: the live namespace matches the result and the configuration"

say "The client connects to the router pod (10.128.0.20:80); the router sends it on from 192.0.2.99"
for i in $(seq 1 20); do ns dest ss -ltn 'sport = :80' | grep -q LISTEN && break; sleep 0.1; done
answer=$(ns client socat -T3 - TCP:10.128.0.20:80 </dev/null)
echo "  $answer"
[[ "$answer" == *192.0.2.99* ]]

say "The same client going straight to 203.0.113.25 is refused"
if direct=$(ns client socat -T3 - TCP:203.0.113.25:80 </dev/null 2>&1); then
  echo "  unexpected: the direct connection got through: $direct"; exit 1
fi
echo "  refused, as the destination's whitelist says: ${direct##*: }"

say "Deleting the attachment with cnitool"
cni del
rm "$tmp/added"
if ns pod ip link show net1 >/dev/null 2>&1; then echo "  net1 is still there"; exit 1; fi
echo "  net1 and its NAT rules are gone from the router pod"
echo "  the plugin's log (log_file, one JSON line per event):"
sed 's/^/    /' "$tmp/egress-router.log"
