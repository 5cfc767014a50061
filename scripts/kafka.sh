#!/usr/bin/env bash
# kafka.sh - run a real single-node Apache Kafka broker (KRaft) for tests.
#
#   scripts/kafka.sh start    fetch the jars if needed, start, print "127.0.0.1:PORT"
#   scripts/kafka.sh stop     stop the broker and remove its data
#   scripts/kafka.sh status   print the bootstrap address, exit 1 if not running
#   scripts/kafka.sh fetch    only fetch the jars
#   scripts/kafka.sh down     stop the broker but keep its data and ports (outage tests)
#   scripts/kafka.sh up       start a broker that 'down' stopped, same data and ports
#
# The jars are org.apache.kafka:kafka_2.13 plus its dependencies, resolved
# with Maven into a cache outside the repo ($VIGIL_CACHE, default
# ~/.cache/vigil). The broker runs on Java 17 with a small heap, on free
# loopback ports, with its state in $VIGIL_KAFKA_DIR (default /tmp/vigil-kafka).
# Every step is idempotent: a running broker is reused, cached jars are not
# fetched again.
set -euo pipefail

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.4.0}"
CACHE="${VIGIL_CACHE:-$HOME/.cache/vigil}"
LIB="$CACHE/kafka-$KAFKA_VERSION/lib"
STATE="${VIGIL_KAFKA_DIR:-/tmp/vigil-kafka}"
HEAP="${VIGIL_KAFKA_HEAP:-384m}"

log() { echo "kafka.sh: $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fetch() {
    if [ -f "$LIB/kafka_2.13-$KAFKA_VERSION.jar" ]; then return 0; fi
    command -v mvn >/dev/null || { log "mvn is not installed (run scripts/deps.sh test)"; exit 1; }
    log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION with Maven into $LIB"
    local tmp
    tmp=$(mktemp -d)
    cat > "$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vigil.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
    mkdir -p "$LIB.part"
    if ! (cd "$tmp" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIB.part" >"$tmp/mvn.log" 2>&1); then
        tail -20 "$tmp/mvn.log" >&2
        log "Maven could not resolve kafka_2.13:$KAFKA_VERSION"
        exit 1
    fi
    rm -rf "$LIB" && mv "$LIB.part" "$LIB"
    rm -rf "$tmp"
}

running_addr() {
    [ -f "$STATE/pid" ] && [ -f "$STATE/addr" ] || return 1
    kill -0 "$(cat "$STATE/pid")" 2>/dev/null || return 1
    cat "$STATE/addr"
}

write_config() {
    local port=$1 cport=$2
    mkdir -p "$STATE/data"
    cat > "$STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$STATE/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=1000000
PROPS
    cat > "$STATE/log4j2.properties" <<L4J
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$STATE/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
L4J
}

start() {
    if addr=$(running_addr); then echo "$addr"; return 0; fi
    command -v java >/dev/null || { log "java is not installed (run scripts/deps.sh test)"; exit 1; }
    fetch
    rm -rf "$STATE" && mkdir -p "$STATE"
    local port cport id
    port=$(free_port); cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    write_config "$port" "$cport"
    local cp="$LIB/*"
    # shellcheck disable=SC2046
    id=$(java $(java_opts) -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$STATE/format.log" | tail -1)
    # shellcheck disable=SC2046
    java $(java_opts) -cp "$cp" kafka.tools.StorageTool format -t "$id" \
        -c "$STATE/server.properties" >>"$STATE/format.log" 2>&1 \
        || { cat "$STATE/format.log" >&2; log "storage format failed"; exit 1; }
    echo "127.0.0.1:$port" > "$STATE/addr"
    launch
}

java_opts() {
    echo "-Xms128m -Xmx$HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
        "-Dlog4j2.configurationFile=$STATE/log4j2.properties -Djava.awt.headless=true"
}

# Run the broker on the prepared state dir, wait until it serves, print the address.
launch() {
    # shellcheck disable=SC2046
    nohup java $(java_opts) -cp "$LIB/*" kafka.Kafka "$STATE/server.properties" \
        >>"$STATE/stdout.log" 2>&1 < /dev/null &
    echo $! > "$STATE/pid"
    wait_ready "$(cut -d: -f2 "$STATE/addr")"
    cat "$STATE/addr"
}

kill_broker() {
    [ -f "$STATE/pid" ] || return 0
    local pid
    pid=$(cat "$STATE/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$STATE/pid"
}

up() {
    if addr=$(running_addr); then echo "$addr"; return 0; fi
    [ -f "$STATE/server.properties" ] && [ -f "$STATE/addr" ] \
        || { log "no stopped broker in $STATE (use start)"; exit 1; }
    launch
}

wait_ready() {
    local port=$1 deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
            tail -30 "$STATE/stdout.log" "$STATE/broker.log" >&2 2>/dev/null || true
            log "broker exited during start-up"; exit 1
        fi
        if port_open "$port" && broker_ready "$port"; then return 0; fi
        sleep 0.5
    done
    log "broker did not become ready within 120s"; stop; exit 1
}

broker_ready() {
    # Metadata that lists broker 1 means the KRaft quorum elected and the broker registered.
    if command -v kcat >/dev/null; then
        kcat -b "127.0.0.1:$1" -L -m 3 2>/dev/null | grep -q "broker 1 at"
    else
        grep -q "Kafka Server started" "$STATE/stdout.log" "$STATE/broker.log" 2>/dev/null
    fi
}

stop() {
    kill_broker
    rm -rf "$STATE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) running_addr || { log "not running"; exit 1; } ;;
    fetch) fetch ;;
    down) kill_broker ;;
    up) up ;;
    *) echo "usage: $0 start|stop|status|fetch|down|up" >&2; exit 2 ;;
esac
