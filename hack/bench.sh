#!/usr/bin/env bash
# Runs every benchmark and measurement and writes docs/performance.md (make bench).
# BENCH_QUICK=1 runs shorter, for checking the tooling.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[ "${BENCH_QUICK:-}" = 1 ] && args+=(--quick)
go run ./hack/benchreport --bin bin "${args[@]}"
