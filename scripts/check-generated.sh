#!/usr/bin/env bash
# Regenerates the distribution's sources from builder-config.yaml in a scratch copy and fails, naming the files,
# when they differ from the committed ones. Usage: check-generated.sh BUILDER FILE...
set -euo pipefail
builder=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The copy keeps the layout that builder-config.yaml's relative paths and go.mod's replace directives expect.
tar -C "$root" --exclude=./bin --exclude=./.tools --exclude=./.cache --exclude=./.git -cf - . | tar -C "$scratch" -xf -
"$root/scripts/generate-distribution.sh" "$builder" "$scratch" >/dev/null 2>&1

stale=()
for f in "$@"; do
	if ! cmp -s "$root/$f" "$scratch/$f"; then
		stale+=("$f")
		diff -u "$root/$f" "$scratch/$f" | head -20 || true
	fi
done
if ((${#stale[@]})); then
	echo "check-generated: ${stale[*]} differ from what builder-config.yaml generates: run 'make generate' and commit the result" >&2
	exit 1
fi
echo "check-generated: sources match builder-config.yaml"
