#!/usr/bin/env bash
# Builds everything (tests included) and fails when the compiler warns about
# any file of this repository: the project builds with no warnings.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests >"$log" 2>&1
status=$?
if [ "$status" != 0 ]; then
  cat "$log"
  exit "$status"
fi
if grep -E "^($(pwd)/)?(Sources|Tests|Benchmarks|Fuzz)/[^:]*:[0-9]+:[0-9]+: warning:" "$log"; then
  echo "build-without-warnings: the compiler warned about the files above" >&2
  exit 1
fi
echo "build: no warnings"
