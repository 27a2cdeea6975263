#!/usr/bin/env bash
# Paired component benchmarks: the component at BASE (a git revision, checked out in a temporary worktree) and the
# working tree, back to back, ROUNDS times; prints each benchmark's ns/span medians and the per-round ratio now/base
# (median, min-max). Only benchmarks that exist on both sides are compared.
set -euo pipefail
base=${1:?usage: scripts/bench-compare.sh BASE_REV [ROUNDS]}
rounds=${2:-5}
benches='BenchmarkProcessor$|BenchmarkConnector$'
repo=$(git rev-parse --show-toplevel)
tree=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
git -C "$repo" worktree add --detach --force "$tree" "$base" >/dev/null 2>&1
out=$(mktemp)
for r in $(seq 1 "$rounds"); do
  for side in base now; do
    dir=$tree; [ "$side" = now ] && dir=$repo
    (cd "$dir/processor/routelatencyprocessor" && go test -run '^$' -bench "$benches" -benchmem ./ ./routelatencyconnector/ 2>/dev/null) |
      awk -v side="$side" '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($(i+1) == "ns/span") print side, $1, $i }' >> "$out"
  done
done
awk '
  { v[$1 "," $2] = v[$1 "," $2] " " $3 }
  END {
    for (k in v) { split(k, p, ","); if (p[1] == "now") names[p[2]] = 1 }
    for (n in names) {
      nb = split(v["base," n], b, " "); nn = split(v["now," n], c, " ")
      m = (nb < nn) ? nb : nn; r = ""
      for (i = 1; i <= m; i++) r = r " " c[i] / b[i]
      printf "%s base %s | now %s | now/base %s\n", n, v["base," n], v["now," n], r
    }
  }' "$out"
