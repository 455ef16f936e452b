#!/usr/bin/env bash
# Runs the whole suite in two passes: everything but the latency-balancing
# tests, in parallel; then those alone, since they compare latencies of a few
# milliseconds that parallel server start-ups on 2 cores would drown.
# The output is kept in .build/test-output.log and, when a test fails, its
# failures are printed again at the end, so that the last lines of a CI log
# name the failing test.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/test-output.log
quiet_suites=LatencyBalancing
{
    swift test --skip "$quiet_suites"
    first=$?
    echo "==== second pass, alone: $quiet_suites ===="
    swift test --skip-build --filter "$quiet_suites"
    second=$?
    exit $(( first != 0 ? first : second ))
} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo
    echo "==== failures (from $log) ===="
    grep -E '✘|recorded an issue|error:|fatal|Fatal' "$log" | grep -v 'passed after' | head -60
fi
exit "$status"
