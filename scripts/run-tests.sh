#!/usr/bin/env bash
# Runs the whole suite. The output is kept in .build/test-output.log and, when
# a test fails, its failures are printed again at the end, so that the last
# lines of a CI log name the failing test.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/test-output.log
swift test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo
    echo "==== failures (from $log) ===="
    grep -E '✘|recorded an issue|error:|fatal|Fatal' "$log" | grep -v 'passed after' | head -60
fi
exit "$status"
