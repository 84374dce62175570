#!/usr/bin/env bash
# Builds the container images from scratch and the static binaries in $BIN_DIR
# (default bin/: run `make build` first), offline with buildah: no base image is
# pulled. Images are named $IMAGE_REPO/<name>:$IMAGE_TAG and land in buildah's storage,
# which CONTAINERS_STORAGE_CONF redirects (the podman end-to-end test builds its own
# binaries into a temporary store that way). Lists the images at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE_REPO=${IMAGE_REPO:-localhost/egress-router}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
BIN_DIR=${BIN_DIR:-bin}

for b in egress-router egress-router-installer egress-http-proxy egress-dns-proxy egress-router-controller egress-router-agent; do
  [ -x "$BIN_DIR/$b" ] || { echo "images: $BIN_DIR/$b is missing; run make build first" >&2; exit 1; }
done

# build NAME CONTAINERFILE [BUILD-ARG...]
build() {
  local name=$1 containerfile=$2
  shift 2
  local args=(--pull=never --quiet --build-arg "VERSION=$VERSION" -f "deploy/images/$containerfile" -t "$IMAGE_REPO/$name:$IMAGE_TAG")
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  echo "images: building $IMAGE_REPO/$name:$IMAGE_TAG"
  buildah build "${args[@]}" "$BIN_DIR" >/dev/null
}

build egress-router-node-installer node-installer.Containerfile
build egress-http-proxy proxy.Containerfile PROXY=egress-http-proxy
build egress-dns-proxy proxy.Containerfile PROXY=egress-dns-proxy
build egress-router-controller controller.Containerfile
build egress-router-agent agent.Containerfile

buildah images --filter "reference=$IMAGE_REPO/*:$IMAGE_TAG"
