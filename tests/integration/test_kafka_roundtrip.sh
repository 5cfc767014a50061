#!/usr/bin/env bash
# test_kafka_roundtrip.sh - run the Kafka round trip (agent sink -> real broker
# -> collector consumer, plus the dead-letter path) against a real broker.
#
#   tests/integration/test_kafka_roundtrip.sh [BUILD_DIR]
#
# The checks themselves are tests/unit/test_kafka.c, which skips its broker
# cases unless VIGIL_KAFKA_BOOTSTRAP is set. With VIGIL_KAFKA_BOOTSTRAP
# already set (scripts/test.sh does) this only runs the binary; otherwise it
# starts a private broker with scripts/kafka.sh, and stops it on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${VIGIL_BUILD_DIR:-$ROOT/build}}
BIN="$BUILD/tests/test_kafka"
[ -x "$BIN" ] || BIN="$BUILD/test_kafka"
[ -x "$BIN" ] || { echo "test_kafka_roundtrip: no test_kafka binary under $BUILD" >&2; exit 1; }

if [ -z "${VIGIL_KAFKA_BOOTSTRAP:-}" ]; then
    export VIGIL_KAFKA_DIR="${VIGIL_KAFKA_DIR:-/tmp/vigil-kafka-roundtrip-$$}"
    trap '"$ROOT/scripts/kafka.sh" stop >/dev/null 2>&1 || true' EXIT
    VIGIL_KAFKA_BOOTSTRAP=$("$ROOT/scripts/kafka.sh" start)
    export VIGIL_KAFKA_BOOTSTRAP
fi
echo "test_kafka_roundtrip: broker at $VIGIL_KAFKA_BOOTSTRAP"
out=$("$BIN" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E '^\[' || true
if echo "$out" | grep -q 'SKIPPED'; then
    echo "test_kafka_roundtrip: broker tests were skipped" >&2
    exit 1
fi
