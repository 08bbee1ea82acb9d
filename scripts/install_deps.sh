#!/usr/bin/env bash
# Installs every Debian 12 package egress needs to build, run and test.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential cmake pkg-config clang llvm clang-format
  libbpf-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
  libabsl-dev libgflags-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev liburing-dev prometheus-cpp-dev libcpp-httplib-dev libyaml-cpp-dev libyaml-dev
  # simdjson: egressd decodes control requests from its DOM; an `apply`
  # line is tens of MB, which nlohmann::json's tree parses ten times slower.
  libsimdjson-dev
  libsystemd-dev systemd libseccomp-dev libsqlite3-dev
  # The Public Suffix List (libpsl, and the list itself): `suggest
  # --group-names` never makes a wildcard over a suffix where anyone can
  # register names (*.co.uk, *.github.io).
  libpsl-dev publicsuffix
  # containerd's API (gRPC) for pod targets, and containerd itself for the
  # tests that start one.
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  containerd runc busybox-static
  iproute2 netbase procps python3
  # mkfs.ext4 and mount: a test makes a small ext4 image (blocks reserved
  # for root) and loop-mounts it as egressd's state directory.
  e2fsprogs mount
  # The DNS server the name-rule tests start on loopback: the binary only
  # (the dnsmasq package would start a system service on install).
  dnsmasq-base
  # The container tests start their own dockerd (its own data root and
  # socket) and build their image offline from a static busybox.
  docker.io busybox-static
  # And their own Podman service (the Docker-compatible API; runc, conmon
  # and the containers-common configuration come with it).
  podman
  # nft: egress_bench measures the nftables alternative (a `socket
  # cgroupv2` match and the same rules) beside egress, and a test checks
  # that alternative decides as egress does. The service stays disabled.
  nftables
)
# A 32-bit libc and gcc's -m32, for the test of source routes set through
# compat (32-bit) syscalls; amd64 only.
if [[ "$(dpkg --print-architecture)" == amd64 ]]; then
  pkgs+=(gcc-multilib)
fi
# The deploy manifests' test (scripts/check_kube_manifests.sh): kubectl for
# `kubectl kustomize`, Node.js and npm for the offline schema check. Debian's
# packages unless the machine has these commands already (another kubectl
# package owns /usr/bin/kubectl, and the two would conflict; the manifests
# render with Debian's kubectl 1.20 as with newer ones).
# EGRESS_DEPLOY_TOOLS=0 leaves them out (deploy/Dockerfile's build stage).
if [[ ${EGRESS_DEPLOY_TOOLS:-1} != 0 ]]; then
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# What the deploy tests need from the network, fetched here so that no test
# ever does (tests send traffic to loopback only): the npm packages of the
# offline manifest validator and the Debian packages of deploy/Dockerfile's
# runtime stage. Into EGRESS_TEST_CACHE (CMake's EGRESS_TEST_CACHE, same
# default); kept between runs, fetched again only when their lists change.
if [[ ${EGRESS_DEPLOY_TOOLS:-1} != 0 ]]; then
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=${EGRESS_TEST_CACHE:-/var/cache/egress-tests}
  bash "$here/scripts/check_kube_manifests.sh" --fetch "$here" "$cache/kube-validate"
  bash "$here/scripts/check_runtime_image.sh" --fetch "$here/deploy/Dockerfile" \
    "$cache/runtime-image-debs"
fi
