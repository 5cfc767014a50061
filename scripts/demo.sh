#!/usr/bin/env bash
# demo.sh - build Vigil and run the main job in the foreground.
#
# The collector and one agent on the embedded default: HTTP transport, no
# Kafka. The agent scrapes its own /metrics (job vigil-agent), collects the
# node's host metrics (job vigil-host) and, where prometheus-node-exporter is
# installed, scrapes a local node_exporter (job node; started here on
# 127.0.0.1:9100 unless one already answers there). The collector evaluates
# the rule pack (alerts/*.yml) under the default alerting policy
# (packaging/alerting-default.yml) with its placeholders left in and
# PagerDuty pointed at a .invalid host too, so nothing leaves the machine: a
# firing alert's notification fails, is logged once per flush and counted in
# vigil_notifications_failed_total. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${VIGIL_DEMO_DIR:-/tmp/vigil-demo}
CPORT=${VIGIL_DEMO_COLLECTOR:-127.0.0.1:9400}
APORT=${VIGIL_DEMO_AGENT:-127.0.0.1:9401}

scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "${VIGIL_JOBS:-2}" vigil-agent vigil-collector vigilctl
mkdir -p "$DIR"

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo; echo "demo.sh: stopping"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

node_job=""
if answers http://127.0.0.1:9100/metrics; then
    node_job="  - job_name: node
    static_configs: [{targets: ['127.0.0.1:9100']}]"
elif command -v prometheus-node-exporter >/dev/null; then
    prometheus-node-exporter --web.listen-address=127.0.0.1:9100 >"$DIR/node_exporter.log" 2>&1 &
    pids+=($!)
    node_job="  - job_name: node
    static_configs: [{targets: ['127.0.0.1:9100']}]"
fi

# The agent's own host metrics carry job="vigil-host"; node_exporter, if any, job="node".
cat > "$DIR/agent.yml" <<YAML
agent: {listen: '$APORT', tenant: default, data_dir: '$DIR/agent'}
global: {scrape_interval: 5s, scrape_timeout: 4s}
host_metrics: {enabled: true, job: vigil-host}
scrape_configs:
  - job_name: vigil-agent
    static_configs: [{targets: ['$APORT']}]
$node_job
output:
  http: {url: 'http://$CPORT'}
YAML

# The policy file is a top-level `alerting:` block; the demo adds a global
# PagerDuty URL on the .invalid domain under it, so the placeholder routing key
# is never sent to the real service.
{
    cat <<YAML
collector: {listen: '$CPORT', data_dir: '$DIR/collector'}
global: {external_labels: {cluster: demo}}
rule_files: ['$ROOT/alerts/*.yml']
YAML
    sed 's|^alerting:$|&\n  global: {pagerduty_url: "https://REPLACE_WITH_PAGERDUTY_URL.invalid/v2/enqueue"}|' \
        packaging/alerting-default.yml
} > "$DIR/collector.yml"
grep -q REPLACE_WITH_PAGERDUTY_URL "$DIR/collector.yml" ||
    { echo "demo.sh: no alerting: line in packaging/alerting-default.yml" >&2; exit 1; }
build/vigil-collector --config "$DIR/collector.yml" &
pids+=($!)
build/vigil-agent --config "$DIR/agent.yml" &
pids+=($!)

deadline=$((SECONDS + 60))
until curl -fsS "http://$CPORT/api/v1/query?query=up%7Bjob%3D%22vigil-agent%22%7D" 2>/dev/null | grep -q '"1"\]'; do
    [ $SECONDS -lt $deadline ] || { echo "demo.sh: no data after 60s; see the logs above" >&2; exit 1; }
    sleep 1
done

cat <<MSG

Vigil is running: collector on http://$CPORT, agent on http://$APORT.
  Grafana:  add a Prometheus data source with URL http://$CPORT
  Query:    curl -s 'http://$CPORT/api/v1/query?query=up'
            VIGIL_URL=http://$CPORT build/vigilctl query 'up'
  Metrics:  curl -s http://$CPORT/metrics
  Alerts:   curl -s http://$CPORT/api/v1/rules   (the rule pack; firing: /api/v1/alerts)
            notifications go to the placeholders of packaging/alerting-default.yml
            and fail: curl -s http://$CPORT/metrics | grep vigil_notifications_failed
Press Ctrl-C to stop.
MSG
curl -s "http://$CPORT/api/v1/query?query=up"; echo
wait
