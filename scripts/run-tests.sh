#!/usr/bin/env bash
# Runs the whole suite in three passes: everything but the Redis, memcached and
# latency-balancing tests, in parallel; then the Redis, Sentinel and memcached
# suites and the tool's service and secret-output tests (they load both cores
# with many tool processes or thousands of
# concurrent commands and start many servers, which would starve the cluster
# suites' timing bounds); then the latency-balancing tests alone, since they
# compare latencies of a few milliseconds.
# The output is kept in .build/test-output.log and, when a test fails, its
# failures are printed again at the end, so that the last lines of a CI log
# name the failing test.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/test-output.log
redis_suites='RedisTests\.|MemcachedTests\.|ServiceCommandTests|SecretOutputTests'
quiet_suites=LatencyBalancing
{
    swift test --skip "$redis_suites" --skip "$quiet_suites"
    first=$?
    echo "==== second pass: the Redis, Sentinel and memcached suites ===="
    swift test --skip-build --filter "$redis_suites"
    second=$?
    echo "==== third pass, alone: $quiet_suites ===="
    swift test --skip-build --filter "$quiet_suites"
    third=$?
    for status in $first $second $third; do
        if [ "$status" -ne 0 ]; then exit "$status"; fi
    done
    exit 0
} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo
    echo "==== failures (from $log) ===="
    grep -E '✘|recorded an issue|error:|fatal|Fatal' "$log" | grep -v 'passed after' | head -60
fi
exit "$status"
