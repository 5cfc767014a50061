#!/usr/bin/env bash
# test.sh - install every build and test dependency, build, run the whole suite.
#
# Steps: scripts/deps.sh test (apt packages, Java 17, Maven, the Kafka jars),
# a release build in build/, a real Kafka broker from scripts/kafka.sh, then
# ctest over every label (unit, fuzz-smoke, integration). With
# VIGIL_SANITIZE_SUITE=1 (the default) the whole suite runs a second time in
# an ASan+UBSan build in build-asan/ (integration tests included: a leak or
# sanitizer report at a daemon's shutdown fails its test). Exits non-zero on any
# failure. Already-done steps are skipped, so a second run only rebuilds and
# tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${VIGIL_JOBS:-2}
start=$SECONDS

scripts/deps.sh test

build() {
    local dir=$1; shift
    cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
    ninja -C "$dir" -j "$JOBS"
}

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo

export VIGIL_KAFKA_DIR="${VIGIL_KAFKA_DIR:-/tmp/vigil-kafka-test-$$}"
cleanup() { scripts/kafka.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
VIGIL_KAFKA_BOOTSTRAP=$(scripts/kafka.sh start)
export VIGIL_KAFKA_BOOTSTRAP
echo "test.sh: Kafka broker at $VIGIL_KAFKA_BOOTSTRAP"

rc=0
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 600) || rc=1

if [ "${VIGIL_SANITIZE_SUITE:-1}" = 1 ]; then
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=address,undefined
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure -j "$JOBS" --timeout 600) || rc=1
fi

echo "test.sh: suite finished in $((SECONDS - start))s, rc=$rc"
exit $rc
