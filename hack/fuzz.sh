#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 5s).
# `make test` runs it briefly; `make fuzz FUZZTIME=2m` runs longer. A crasher is saved under
# the package's testdata/fuzz/ and becomes a regression test run by plain `go test`.
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
status=0
# Find targets in the sources: `go test -list` would run each package's TestMain (some start
# a control plane).
while read -r file target; do
  pkg="./$(dirname "$file")"
  echo "fuzz: $pkg $target for $fuzztime" >&2
  if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"; then
    status=1
  fi
done < <(git ls-files '*_test.go' | xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed -e 's/:func / /')
exit $status
