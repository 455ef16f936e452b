# ClusterSQL: `make demo` runs the main job, `make test` runs the whole suite.
# Both install what they need first (scripts/setup.sh is idempotent).

SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: setup build demo test unit docs test-tsan test-asan format lint fuzz fuzz-smoke check-compose bench bench-sql bench-cluster bench-redis bench-redis-tls bench-sentinel bench-memcached bench-tracing clean

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build-without-warnings.sh

demo: build
	.build/debug/clustersql demo

test: build check-compose lint docs
	bash scripts/run-tests.sh
	$(MAKE) test-tsan
	$(MAKE) test-asan
	$(MAKE) fuzz-smoke

# The unit tests alone: the targets that start no server and no other process (every test target
# whose name does not end in IntegrationTests), in about 20 seconds after a build.
unit: build
	swift test --skip-build --skip 'IntegrationTests\.'

# Every parser of outside input under libFuzzer and AddressSanitizer, FUZZ_SECONDS per target (scripts/fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz: setup
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

# The short run that make test does: a few seconds per target (under a minute in all).
fuzz-smoke: setup
	bash scripts/fuzz.sh 5

# The code keeps the style of .swift-format (swift-format, part of the toolchain): make format rewrites, make lint checks.
format:
	swift format format --in-place --recursive --parallel Sources Tests Benchmarks Fuzz Package.swift

lint:
	swift format lint --strict --recursive --parallel Sources Tests Benchmarks Fuzz Package.swift

# The DocC catalogs of every library product (Sources/*/Documentation.docc), built with no warning
# (an unresolved symbol link, an undocumented parameter); the archives land in .build/plugins/Swift-DocC/outputs.
DOC_TARGETS := ConnectionKit SQLCore SQLiteBackend PostgresBackend MariaDBBackend ClusterSQL FaultInjection \
	ClusterConfig RESP Redis Memcached NIOClientSupport
docs: setup
	@mkdir -p .build
	swift package --disable-sandbox generate-documentation --warnings-as-errors \
		$(addprefix --target ,$(DOC_TARGETS)) > .build/docs.log 2>&1 || { cat .build/docs.log; exit 1; }
	@# SwiftPM's notes on a dependency's own layout ("'swift-distributed-tracing': found 1 file(s) which are unhandled") are not ours.
	@if grep 'warning:' .build/docs.log | grep -qv "warning: '[^']*': found [0-9]* file(s) which are unhandled"; then \
		grep -A4 'warning:' .build/docs.log | grep -v "which are unhandled"; exit 1; fi
	@echo "docs: $(words $(DOC_TARGETS)) archives, no warning"

# docker-compose.yml parses and resolves (Debian's docker-compose; no engine needed).
check-compose: setup
	docker-compose -f docker-compose.yml config -q

# Every suite under ThreadSanitizer, then under AddressSanitizer, each in a build folder of its own
# (scripts/run-sanitized-tests.sh says what is left out and why).
test-tsan: setup
	bash scripts/run-sanitized-tests.sh thread

test-asan: setup
	bash scripts/run-sanitized-tests.sh address

# Pool borrow+return cost and contention (release build).
bench:
	swift run -c release connectionkit-bench

# SQLite inserts (a batch; a statement each) and a full select vs the same work in C; point selects through
# Database (cooperative pool; the driver's executor) vs pgbench -S (simple, prepared) and sysbench
# oltp_point_select; 100,000-row batches vs C programs using libpq's pipeline mode and Connector/C's bulk
# binding; alternating rounds, same servers, same run (release build).
bench-sql: setup
	swift run -c release sql-bench 5

# ClusterDriver over one node vs the driver alone; opens with one Galera node stopped vs all healthy (release build).
bench-cluster: setup
	swift run -c release cluster-bench 10

# RedisPool GET/SET vs redis-benchmark -c 8, then auto-pipelined vs redis-benchmark -c 8 -P 16, same server, same run (release build).
bench-redis: setup
	swift run -c release redis-bench 5

# The same over TLS on both sides (redis-benchmark --tls), a client certificate required.
bench-redis-tls: setup
	swift run -c release redis-bench 5 both loop tls

# 5 failovers under a write loop (time from +switch-master to the first write, failed writes), then
# GET/SET through SentinelClient vs a plain RedisPool on the same master, alternating rounds (release build).
bench-sentinel: setup
	swift run -c release sentinel-bench 5 5

# MemcachedClient vs memcaslap on the same two servers (get/set 9:1, 8 connections, alternating rounds), get many
# of 100 keys, and a short-circuited call of the healing client while a server is down (release build).
bench-memcached: setup
	swift run -c release memcached-bench 5

# Tracing off vs the no-op tracer vs an in-memory tracer: PostgreSQL point selects and Redis GET, alternating rounds (release build).
bench-tracing: setup
	swift run -c release tracing-bench 3 5

clean:
	rm -rf .build .build-tsan .build-asan .build-fuzz .clustersql-data
