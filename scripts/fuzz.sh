#!/usr/bin/env bash
# Fuzzes every parser of outside input with libFuzzer and AddressSanitizer
# (Fuzz/fuzz-parsers): RESP, memcached meta, config.toml, the PostgreSQL,
# MariaDB and Redis DSN parsers, DSN redaction, the placeholder rewriter and
# the stats JSON round trip.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]
#   FUZZ_CONFIGURATION=release scripts/fuzz.sh 600   # faster, for long runs
#   FUZZ_CONFIGURATION=release FUZZ_RUNS=10000000 scripts/fuzz.sh 86400   # a number of executions per target
#
# Each target starts from its committed seeds (Fuzz/seeds/TARGET) and grows a
# corpus of its own in .build-fuzz/corpus/TARGET; a crash leaves its input in
# .build-fuzz/crashes/ and fails the run; the inputs that once crashed a target
# (Fuzz/regressions/TARGET-*) run first. The last lines give each target's
# executions. The config target runs without leak detection: TOMLKit leaks in
# its C++ bridge (the key array of every TOMLTable.keys, a few hundred bytes
# per syntax error): a dependency's bug, harmless for a file read once.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(resp memcached config postgres-dsn mariadb-dsn redis-url redaction placeholders stats-json)
fi
configuration=${FUZZ_CONFIGURATION:-debug}
scratch=.build-fuzz
mkdir -p "$scratch"
if ! swift build -c "$configuration" --scratch-path "$scratch" --product fuzz-parsers \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING > "$scratch/build.log" 2>&1; then
  cat "$scratch/build.log"
  echo "fuzz: the fuzzing build failed" >&2
  exit 1
fi
binary="$scratch/$configuration/fuzz-parsers"
mkdir -p "$scratch/crashes"
summary=()
status=0
for target in "${targets[@]}"; do
  mkdir -p "$scratch/corpus/$target"
  options=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$scratch/crashes/$target-")
  # Executions per process: the config target leaks in TOMLKit (see above), about 1.3 KB per execution,
  # so a long run of it is rounds of fresh processes over the same corpus.
  round_limit=""
  asan_options=""
  leak_option=()
  if [ "$target" = config ]; then
    leak_option=(-detect_leaks=0)
    options+=(-detect_leaks=0)
    round_limit=500000
    asan_options=detect_leaks=0
  fi
  log="$scratch/fuzz-$target.log"
  # The inputs that once crashed this target run first, each once.
  regressions=(Fuzz/regressions/"$target"-*)
  if [ -e "${regressions[0]}" ] && ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="$asan_options" FUZZ_TARGET="$target" "$binary" -runs=1 "${leak_option[@]}" "${regressions[@]}" > "$log" 2>&1; then
    status=1
    summary+=("$target: FAILED on a regression input of Fuzz/regressions (see $log)")
    grep -E 'ERROR|SUMMARY|Fatal error|precondition|Running: ' "$log" | head -5
    continue
  fi
  total=0
  started=$SECONDS
  while :; do
    want=${FUZZ_RUNS:+$((FUZZ_RUNS - total))}
    if [ -n "$round_limit" ] && { [ -z "$want" ] || [ "$want" -gt "$round_limit" ]; }; then want=$round_limit; fi
    left=$((seconds - (SECONDS - started)))
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="$asan_options" FUZZ_TARGET="$target" "$binary" "${options[@]}" \
      -max_total_time=$((left > 1 ? left : 1)) ${want:+-runs="$want"} "$scratch/corpus/$target" "Fuzz/seeds/$target" > "$log" 2>&1
    result=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    total=$((total + ${runs:-0}))
    if [ "$result" -ne 0 ] || [ -z "$round_limit" ] || [ $((SECONDS - started)) -ge "$seconds" ]; then break; fi
    if [ -n "${FUZZ_RUNS:-}" ] && [ "$total" -ge "$FUZZ_RUNS" ]; then break; fi
  done
  runs=$total
  if [ "$result" -ne 0 ]; then
    status=1
    summary+=("$target: FAILED after ${runs:-?} executions (see $log and $scratch/crashes/)")
    grep -E 'ERROR|SUMMARY|Fatal error|precondition' "$log" | head -5
  else
    summary+=("$target: $runs executions in $((SECONDS - started)) s, no crash")
  fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
