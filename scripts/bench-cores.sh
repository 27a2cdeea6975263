#!/usr/bin/env bash
# bench-cores.sh COMPONENT_DIR [ROUNDS]: how the processor and the connector scale from one core to two
# (BenchmarkProcessorParallel, BenchmarkConnectorParallel): per round, -cpu 1 then -cpu 2, 1 s each, and the ratio
# of their throughputs; then the median and range of the ratios. `make bench-component` ends with it.
set -euo pipefail
dir=$1 rounds=${2:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$dir" && go test -c -o "$tmp/processor.test" .)
(cd "$dir/routelatencyconnector" && go test -c -o "$tmp/connector.test" .)

nsPerSpan() { # test binary, benchmark regex, cpus -> ns/span
	"$1" -test.run '^$' -test.cpu "$3" -test.benchtime 1s -test.bench "$2" |
		awk '/ns\/span/ {for (i = 1; i < NF; i++) if ($(i+1) == "ns/span") print $i}'
}
median() { # a column of numbers -> "median min max"
	sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)], v[1], v[NR]}'
}
for bench in processor:BenchmarkProcessorParallel connector:BenchmarkConnectorParallel; do
	bin=$tmp/${bench%%:*}.test name=${bench#*:}
	for _ in $(seq "$rounds"); do
		one=$(nsPerSpan "$bin" "^$name\$" 1)
		two=$(nsPerSpan "$bin" "^$name\$" 2)
		echo "$one $two" | awk '{print $1, $2, $1 / $2}'
	done >"$tmp/rounds"
	read -r ratio low high < <(cut -d' ' -f3 "$tmp/rounds" | median)
	read -r one _ < <(cut -d' ' -f1 "$tmp/rounds" | median)
	read -r two _ < <(cut -d' ' -f2 "$tmp/rounds" | median)
	printf '%s: -cpu 2 does %.2fx (%.2f-%.2f) the spans per second of -cpu 1, %d rounds; %.0f and %.0f ns/span (medians)\n' \
		"$name" "$ratio" "$low" "$high" "$rounds" "$one" "$two"
done
