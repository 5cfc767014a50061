#!/usr/bin/env bash
# run.sh - build chunk_decode against a build tree and run it on a block.
#   bench/chunk_decode/run.sh BLOCK_DIR [BUILD_DIR] [ROUNDS]
# (a block from bench/ingest_vs_vm_prom/run.py --keep DIR:
#  DIR/vigil/data/blocks/default/<ULID>)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
block=$1
build=${2:-$root/build}
ninja -C "$build" vigil_common vigil_collector_core >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2046
gcc -std=c11 -O2 -D_GNU_SOURCE -I"$root/include" -I"$root/collector" -I"$build/gen" \
    "$here/chunk_decode.c" "$build/libvigil_collector_core.a" "$build/libvigil_common.a" \
    $(pkg-config --libs libprotobuf-c libzstd libcurl libpcre2-8 yaml-0.1 libxxhash rdkafka openssl jansson) \
    -lpthread -lm -o "$out/chunk_decode"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u '+%F %H:%M') UTC; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/chunk_decode" "$block" "${3:-7}"
