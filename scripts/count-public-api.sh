#!/bin/bash
# Counts the public (and open) declarations of every library product: one line of
# source per declaration, attributes included (`@inlinable public func`).
# Usage: scripts/count-public-api.sh        (per module, then the total)
set -euo pipefail
cd "$(dirname "$0")/.."

modules=$(grep -oE '\.library\(name: "[A-Za-z]+"' Package.swift | sed -E 's/.*"(.*)"/\1/')
total=0
for module in $modules; do
    count=$(grep -rhE '^[[:space:]]*(@[A-Za-z_]+(\([^)]*\))? +)*(public([[:space:]]|\()|open[[:space:]]+(class|func|var|subscript))' \
        "Sources/$module" --include='*.swift' | wc -l)
    printf '%6d  %s\n' "$count" "$module"
    total=$((total + count))
done
printf '%6d  total\n' "$total"
