#!/usr/bin/env bash
# The last step of make test: fails when a process the tests start is still running (the collector, the example
# services, Jaeger, a test's Prometheus or Alertmanager, the image's processes, a headless Chromium), or a port of the
# range the harness hands out (20000-31999) still listens. Every test stops what it started; this checks they did.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
pattern="$top/(bin|\.cache|\.tools)/|buildah-chroot-exec|(^| )/otelcol-apm( |$)|prometheus(-alertmanager)? --config\.file=/tmp/|chromedriver|chrom(e|ium).*--headless"
left=$(ps -eo pid=,args= | grep -E -- "$pattern" | grep -v -E "grep|check-leftovers" || true)
listening=$(ss -ltnpH 2>/dev/null | awk '{n = split($4, a, ":"); p = a[n] + 0; if (p >= 20000 && p <= 31999) print}' || true)
status=0
if [ -n "$left" ]; then
  echo "make test left these processes running:"; echo "$left"; status=1
fi
if [ -n "$listening" ]; then
  echo "make test left these listeners on the test ports (20000-31999):"; echo "$listening"; status=1
fi
[ $status -eq 0 ] && echo "check-leftovers: no process or listener of the tests left"
exit $status
