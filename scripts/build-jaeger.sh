#!/usr/bin/env bash
# Builds the real Jaeger v2 binary from the pinned Jaeger module (its go.mod has a replace directive, so
# `go install module@version` is refused; building inside the downloaded module works). Usage: build-jaeger.sh VERSION OUT
set -euo pipefail
version=$1 out=$2
dir=$(go mod download -json "github.com/jaegertracing/jaeger@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[[ -d $dir ]] || { echo "build-jaeger: could not download github.com/jaegertracing/jaeger@$version" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
echo "build-jaeger: building Jaeger $version (several minutes when cold)"
(cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$(realpath -m "$OLDPWD/$out")" ./cmd/jaeger)
