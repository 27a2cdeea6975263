#!/usr/bin/env bash
# make demo: otelcol-apm with the route dashboard, two example services (shop and catalog) with realistic latencies,
# and a steady request mix to each, for DEMO_DURATION (10m). The dashboard's slices are 3 s (DASHBOARD_SLICE) so
# that the page has a chart worth looking at within a minute. With a Jaeger on localhost (make jaeger), spans go to
# it (environments/development.yaml) and the page links to their traces; without, they go to ./data/spans.jsonl.
# Ctrl-C stops everything and ends without an error.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DEMO_DURATION:-10m}
# The example services' objectives (environments/slos.yaml): the dashboard's SLO view, slo_events_total on :8889.
configs=(--config config.yaml --config environments/slos.yaml)
if curl -sf -o /dev/null localhost:16686/api/services; then
	configs+=(--config environments/development.yaml)
	echo "Jaeger found on localhost:16686: spans go to it, the dashboard links to their traces"
fi
pids=()
stop() {
	trap - INT TERM EXIT
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap stop INT TERM EXIT

DASHBOARD_SLICE=${DASHBOARD_SLICE:-3s} ROUTE_METRICS_FLUSH_INTERVAL=${ROUTE_METRICS_FLUSH_INTERVAL:-3s} \
	bin/otelcol-apm "${configs[@]}" >.cache/demo-collector.log 2>&1 &
pids+=($!)
for i in $(seq 1 50); do curl -sf -o /dev/null localhost:13133/ && break; sleep 0.2; done
# shop's GET /orders/{order_id} calls catalog (its downstream), which the route page's breakdown shows.
# start SERVICE PORT VERSION SLOW_DELAY: one example service.
start() {
	OTEL_SERVICE_NAME=$1 OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=development,service.version=$3 \
		OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_EXPORTER_OTLP_INSECURE=true LATENCY=realistic \
		LISTEN_ADDR=127.0.0.1:$2 SLOW_DELAY=$4 DOWNSTREAM_URL=$([ "$1" = shop ] && echo http://127.0.0.1:8001) \
		bin/shopapi >>.cache/demo-services.log 2>&1 &
	pids+=($!)
}
start shop 8000 1.4.0 600ms
shop=$!
start catalog 8001 2.1.0 600ms
# A deploy after DEMO_REDEPLOY_AFTER (40s): shop 1.5.0, whose report route is twice as slow, for the versions table.
(
	trap 'kill $(jobs -p) 2>/dev/null; exit 0' INT TERM EXIT
	sleep "${DEMO_REDEPLOY_AFTER:-40s}"
	kill "$shop" 2>/dev/null || exit 0
	while kill -0 "$shop" 2>/dev/null; do sleep 0.1; done
	start shop 8000 1.5.0 1200ms
	wait
) &
pids+=($!)
sleep 1
bin/trafficmix -target http://127.0.0.1:8000 -rate 30 -duration "$duration" >>.cache/demo-traffic.log 2>&1 &
pids+=($!)
bin/trafficmix -target http://127.0.0.1:8001 -rate 12 -duration "$duration" >>.cache/demo-traffic.log 2>&1 &
traffic=$!
pids+=($traffic)
echo "Route dashboard: http://localhost:8890/ (traffic for $duration; Ctrl-C stops; logs in .cache/demo-*.log)"
wait "$traffic" || true
