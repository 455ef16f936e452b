# ClusterSQL: `make demo` runs the main job, `make test` runs the whole suite.
# Both install what they need first (scripts/setup.sh is idempotent).

SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: setup build demo test clean

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build-without-warnings.sh

demo: build
	.build/debug/clustersql demo

test: build
	swift test

clean:
	rm -rf .build .clustersql-data
