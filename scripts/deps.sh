#!/usr/bin/env bash
# deps.sh - install what Vigil needs from the system package manager.
#
#   scripts/deps.sh build   compilers, CMake and the C libraries
#   scripts/deps.sh test    the above plus the peers the suite runs against
#                           (Java 17 + Maven for Kafka, Prometheus, Alertmanager,
#                           node_exporter, VictoriaMetrics, rsyslog, kcat,
#                           clang for libFuzzer) and the Kafka jars
#
# Only missing packages are installed, and apt-get update runs only when
# something is missing, so a second run does nothing.
set -euo pipefail

BUILD_PKGS=(build-essential cmake ninja-build pkg-config git python3
    librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libzstd-dev libmicrohttpd-dev
    libcurl4-openssl-dev libpcre2-dev libyaml-dev libsnappy-dev libxxhash-dev libssl-dev
    libjansson-dev zstd curl ca-certificates)
TEST_PKGS=(libcmocka-dev openjdk-17-jre-headless maven prometheus prometheus-node-exporter
    prometheus-alertmanager victoria-metrics rsyslog rsyslog-kafka rsyslog-openssl kcat clang libclang-rt-14-dev
    clang-format valgrind curl procps openssl)

missing() {
    local p out=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
    done
    echo "${out[@]:-}"
}

install() {
    local need
    need=$(missing "$@")
    [ -z "$need" ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "deps.sh: installing $need" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Packages that ship daemons must not start them here; tests start their own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null
}

case "${1:-build}" in
    build) install "${BUILD_PKGS[@]}" ;;
    test)
        install "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
        "$(dirname "$0")/kafka.sh" fetch
        ;;
    *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
