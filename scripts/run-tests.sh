#!/usr/bin/env bash
# Runs the whole suite in two passes: everything but the Redis and memcached
# tests, in parallel; then the Redis, Sentinel and memcached suites and the
# tool's service and secret-output tests (they load both cores with many tool
# processes or thousands of concurrent commands and start many servers, which
# would starve the cluster suites' timing bounds).
# The output is kept in .build/test-output.log and, when a test fails, its
# failures are printed again at the end, so that the last lines of a CI log
# name the failing test.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/test-output.log
redis_suites='RedisTests\.|MemcachedTests\.|ServiceCommandTests|SecretOutputTests'
{
    swift test --skip "$redis_suites"
    first=$?
    echo "==== second pass: the Redis, Sentinel and memcached suites ===="
    swift test --skip-build --filter "$redis_suites"
    second=$?
    for status in $first $second; do
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
