#!/usr/bin/env bash
# The test command of the README: formatting, vet, and every test (unit, store conformance,
# and interop tests with Postfix and swaks, which fail when those are missing).
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted:" $unformatted >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
