#!/usr/bin/env bash
# Runs every dpnode test: installs what is missing, builds, then ctest.
# Usage: ./tests/run.sh [extra ctest arguments, e.g. -R privacy]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure -j2 "$@"
# CI also runs each fuzz target briefly under libFuzzer (docs/fuzzing.md).
if [ "${CI:-}" = "true" ]; then
  ./scripts/fuzz.sh 20
fi
