#!/usr/bin/env bash
# The demo: until the CNI plugin lands, it says what it will show.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
egress-router demo (preview)
  1. create the test topology in network namespaces: client, node (with a bridge
     "cluster" and a veth "ext0" as the macvlan master), router pod, gateway, and a
     destination that accepts only the reserved IP 192.0.2.99
  2. ADD the egress-router plugin to the router pod through cnitool
  3. show the client reaching the destination through the router, and the
     destination printing the source it saw (192.0.2.99)
  4. show the same client refused when it goes direct
  5. DEL the attachment and remove everything
The plugin is not built yet, so nothing is created. The binaries built:
MSG
for b in bin/egress-router bin/egress-http-proxy bin/egress-dns-proxy; do
  printf '  %s\n' "$b"
done
