#!/usr/bin/env bash
# Runs the suites under a sanitizer, in a build folder of its own:
#
#   scripts/run-sanitized-tests.sh thread    # ThreadSanitizer (.build-tsan)
#   scripts/run-sanitized-tests.sh address   # AddressSanitizer (.build-asan)
#
# Every suite runs, against the same real servers as scripts/run-tests.sh, in
# eight passes rather than one: instrumented code is 2 to 15 times slower, and
# all suites at once on 2 cores would miss their bounds because of the load
# alone. The race of cancels against statement ends runs in a pass of its own,
# as in scripts/run-tests.sh: its cancel requests fill the few helper threads
# that also carry the other tests' KILL QUERY and PQcancel, and a cancel that
# waited behind them past its 5 s grace gave its connection up. Left out: the latency-balancing tests on Galera, which compare
# latencies measured in real time that instrumented code does not keep (their
# code paths run in the other cluster suites, and the balancing logic in
# virtual time in ClusterTimingTests). Wall-clock bounds that mean "promptly" are
# stretched through CLUSTERSQL_TEST_TIME_SCALE (TestServers' TestTiming).
#
# ThreadSanitizer: a known false positive of the Swift runtime's continuations
# is suppressed (scripts/tsan-suppressions.txt); any other report fails the run.
# AddressSanitizer: leaks are not checked (TOMLKit's C++ bridge leaks by
# design of its API, and the Swift runtime keeps metadata for the process's
# life); every other report fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:?usage: run-sanitized-tests.sh thread|address}
case "$sanitizer" in
  thread)
    scratch=.build-tsan
    export CLUSTERSQL_TEST_TIME_SCALE=5
    export TSAN_OPTIONS="suppressions=$PWD/scripts/tsan-suppressions.txt halt_on_error=0 ${TSAN_OPTIONS:-}"
    ;;
  address)
    scratch=.build-asan
    export CLUSTERSQL_TEST_TIME_SCALE=3
    export ASAN_OPTIONS="detect_leaks=0 ${ASAN_OPTIONS:-}"
    ;;
  *) echo "usage: run-sanitized-tests.sh thread|address" >&2; exit 2 ;;
esac
mkdir -p "$scratch"
log="$scratch/test-output.log"
backends='PostgresBackendIntegrationTests|MariaDBBackendIntegrationTests|SQLConformanceIntegrationTests'
cluster='ClusterSQLTests\.|ClusterSQLIntegrationTests\.|ClusterSQLToolIntegrationTests\.'
services='Redis(Integration)?Tests\.|Memcached(Integration)?Tests\.|ServiceCommandTests|SecretOutputTests'
# The TLS suites start servers of their own and do handshakes in instrumented BoringSSL: beside the
# other service suites they loaded the pass enough for an unrelated 1 s bound to be missed.
tls='TLSTests'
pass_status=0
run_pass() {
  echo "==== $sanitizer sanitizer: $1 ===="
  shift
  swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "$@" || pass_status=1
}
{
  swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" || exit 1
  run_pass "the core, SQLite, parsers, config, ConnectionKit, the reactor" \
    --skip "$backends|$cluster|$services|$tls" --skip LatencyBalancing
  run_pass "the PostgreSQL and MariaDB backends" --filter "$backends" --skip cancelRacingStatementEnd
  run_pass "cancels racing statement ends, on PostgreSQL and on MariaDB" --filter cancelRacingStatementEnd
  run_pass "ClusterDriver and the tool" --filter "$cluster" --skip "$services" --skip LatencyBalancing
  run_pass "the Redis client" --filter 'Redis(Integration)?Tests\.' --skip 'RedisIntegrationTests\.Sentinel' --skip "$tls" --skip cancelOnStoppedServer
  run_pass "the Sentinel and memcached clients, the tool's services" --filter "$services" --skip 'Redis(Integration)?Tests\.(Redis|MasterTracker|ReplicaChooser)' \
    --skip "$tls" --skip cancelOnStoppedServer
  run_pass "a cancelled Redis GET and memcached get return at once" --filter cancelOnStoppedServer
  run_pass "TLS for Redis, Sentinel and memcached" --filter "$tls"
  exit "$pass_status"
} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# A report makes the test process exit non-zero only when it ends; name it at the end of the log too.
reports=$(grep -cE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer' "$log")
if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
  echo
  echo "==== $sanitizer sanitizer: $reports report(s); failures (from $log) ===="
  grep -E 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|SUMMARY:|✘|recorded an issue|fatal|Fatal' "$log" | grep -v 'passed after' | head -60
  exit 1
fi
