#!/usr/bin/env bash
# run.sh - the scrape path alone, with the real batcher, and with the proposed
# batcher prototype, over the same local targets (see scrape_path.c).
#   bench/scrape_path/run.sh [BUILD_DIR] [TARGETS] [ROUNDS]   (default: build 50 8)
# For instruction counts:
#   valgrind --tool=callgrind --toggle-collect=vg_scraper_run_once BIN CONFIG 3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
targets=${2:-50}
rounds=${3:-8}
ninja -C "$build" vigil_common vigil_agent_core >/dev/null
out=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv"; rm -rf "$out"' EXIT
# shellcheck disable=SC2046
gcc -std=c11 -O2 -D_GNU_SOURCE -I"$root" -I"$root/include" -I"$root/agent" -I"$build/gen" \
    "$here/scrape_path.c" "$build/libvigil_agent_core.a" "$build/libvigil_common.a" \
    $(pkg-config --libs rdkafka libprotobuf-c libzstd libmicrohttpd libcurl libpcre2-8 yaml-0.1 \
        snappy libxxhash openssl jansson) -lpthread -lm -o "$out/scrape_path"
python3 "$here/serve.py" --targets "$targets" --out "$out/cfg" >"$out/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q ready "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F)"
for mode in null proto add ship; do
    "$out/scrape_path" "$out/cfg/vigil.yml" "$rounds" "$mode" 2>/dev/null | tail -1
done
