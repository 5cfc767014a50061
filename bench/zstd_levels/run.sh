#!/usr/bin/env bash
# run.sh - build zstd_levels against a build tree and run it on the fixture.
#   bench/zstd_levels/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
ninja -C "$build" vigil_common vigil_agent_core >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2046
gcc -std=c11 -O2 -D_GNU_SOURCE -I"$root/include" -I"$root/agent" -I"$build/gen" \
    "$here/zstd_levels.c" "$build/libvigil_agent_core.a" "$build/libvigil_common.a" \
    $(pkg-config --libs libprotobuf-c libzstd libcurl libpcre2-8 yaml-0.1 libxxhash rdkafka openssl) \
    -lpthread -lm -o "$out/zstd_levels"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F)"
"$out/zstd_levels" "$root/../shared/testdata/exposition/alltypes.237mfs.prom.txt"
