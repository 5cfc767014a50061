#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer harnesses with clang and run each for a while.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]
#
# Corpora live in tests/data/fuzz/<name>/ and grow as the fuzzer finds new
# coverage; crashes land in tests/data/fuzz/<name>/crash-* so that, once
# fixed, they are replayed by the fuzz-smoke tests on every build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}; shift || true
CC=clang cmake -S . -B build-fuzz -G Ninja -DVIGIL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVIGIL_SANITIZE=address,undefined >/dev/null
ninja -C build-fuzz -j "${VIGIL_JOBS:-2}"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do harnesses+=("$(basename "$f" .c)"); done
fi
rc=0
for h in "${harnesses[@]}"; do
    name=${h#fuzz_}
    mkdir -p "tests/data/fuzz/$name"
    echo "fuzz.sh: $h for ${secs}s"
    "build-fuzz/tests/$h" -max_total_time="$secs" -max_len=65536 \
        -artifact_prefix="tests/data/fuzz/$name/" "tests/data/fuzz/$name" || rc=1
done
exit $rc
