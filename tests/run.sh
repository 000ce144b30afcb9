#!/usr/bin/env bash
# Runs every dpnode test: installs what is missing, builds, then ctest.
# Usage: ./tests/run.sh [extra ctest arguments, e.g. -R privacy]
# Under CI=true it also runs each fuzz target briefly under libFuzzer
# (docs/fuzzing.md) first, so that ctest's summary is the closing line of the
# normal run, and afterwards the whole suite again under ASan+UBSan
# (scripts/sanitize.sh, build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
if [ "${CI:-}" = "true" ]; then
  ./scripts/fuzz.sh 20
fi
ctest --test-dir build --output-on-failure -j2 "$@"
if [ "${CI:-}" = "true" ]; then
  ./scripts/sanitize.sh
fi
