#!/usr/bin/env bash
# Generates the distribution's sources from builder-config.yaml in DIR (a checkout): main*.go and components.go by
# the builder, gofmt'd (the builder does not sort its imports), then go.mod and go.sum by `go mod tidy -e`.
# Usage: generate-distribution.sh BUILDER DIR. `make generate` runs it on the checkout, check-generated on a copy.
set -euo pipefail
builder=$1 dir=$2
cd "$dir"
"$builder" --config builder-config.yaml --skip-get-modules --skip-compilation
gofmt -w main.go main_others.go main_windows.go components.go
go mod tidy -e
