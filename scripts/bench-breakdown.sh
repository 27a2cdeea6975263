#!/usr/bin/env bash
# bench-breakdown.sh COMPONENT_DIR RESULTS.md [ROUNDS]: what the route breakdown costs, written at the end of
# RESULTS.md by `make bench` (a section of its own, which a later run replaces). Per span of the benchmarks' mix:
# BenchmarkConnectorBreakdown (every span joined) less BenchmarkConnectorFreshTraces (the same batches, breakdown
# off), run back to back in each round on one core; and the shipped bound (BenchmarkConnectorBreakdownAtBound,
# whole and less the same FreshTraces), where at this rate each request is recorded early, when the join needs its
# room (after about 0.2 s instead of the 5 s grace). Then the heap the join holds at 100k spans/s.
set -euo pipefail
dir=$1 results=$2 rounds=${3:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$dir/routelatencyconnector" && go test -c -o "$tmp/connector.test" .)
(cd "$dir/internal/breakdown" && go test -c -o "$tmp/breakdown.test" .)

nsPerSpan() { # benchmark regex -> ns/span
	taskset -c 1 "$tmp/connector.test" -test.run '^$' -test.cpu 1 -test.benchtime 300x -test.bench "$1" |
		awk '/ns\/span/ {for (i = 1; i < NF; i++) if ($(i+1) == "ns/span") print $i}'
}
for round in $(seq "$rounds"); do
	on=$(nsPerSpan '^BenchmarkConnectorBreakdown$')
	off=$(nsPerSpan '^BenchmarkConnectorFreshTraces$')
	bound=$(nsPerSpan '^BenchmarkConnectorBreakdownAtBound$')
	echo "$round $on $off $bound" | tee -a "$tmp/rounds"
done
memory=$("$tmp/breakdown.test" -test.run '^TestMemoryHeldAt100kSpansPerSecond$' -test.v | grep -o 'traces of[^;]*' || true)

summary() { # column -> "median (min–max)"
	sort -n | awk '{v[NR] = $1} END {printf "%.0f (%.0f–%.0f)", v[int((NR + 1) / 2)], v[1], v[NR]}'
}
# The section is the file's last: what a previous run of this script wrote goes, the rest stays.
heading="## The route breakdown"
if grep -qx "$heading" "$results"; then
	awk -v h="$heading" '$0 == h {exit} /^$/ {blank++; next} {for (; blank > 0; blank--) print ""; print}' "$results" >"$tmp/kept"
	cp "$tmp/kept" "$results"
fi
{
	echo
	echo "$heading"
	echo
	echo "Written by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M') UTC): $rounds rounds on core 1, each running the"
	echo "connector's benchmarks back to back (\`scripts/bench-breakdown.sh\`), ns per span of their mix (1,000 requests"
	echo "of fresh traces every 100 ms of a driven clock, 45,000 spans/s, the default 5 s grace). Target: the breakdown's"
	echo "own cost at most 100 ns per span."
	echo
	echo "| figure | median (min–max) |"
	echo "|---|---|"
	echo "| breakdown on, every span joined (\`BenchmarkConnectorBreakdown\`) | $(awk '{print $2}' "$tmp/rounds" | summary) |"
	echo "| breakdown off (\`BenchmarkConnectorFreshTraces\`) | $(awk '{print $3}' "$tmp/rounds" | summary) |"
	echo "| **the breakdown's own cost** (the two, per round) | **$(awk '{print $2 - $3}' "$tmp/rounds" | summary)** |"
	echo "| breakdown on at the shipped \`max_spans\`, every request recorded early, when the join needs its room (\`...AtBound\`) | $(awk '{print $4}' "$tmp/rounds" | summary) |"
	echo "| the breakdown's own cost at the shipped \`max_spans\` (\`...AtBound\` less breakdown off, per round) | $(awk '{print $4 - $3}' "$tmp/rounds" | summary) |"
	echo
	echo "Memory the join holds at 100,000 spans/s (\`TestMemoryHeldAt100kSpansPerSecond\`):"
	echo
	echo "$memory" | sed 's/^/- /'
} >>"$results"
echo "bench-breakdown: written to $results"
