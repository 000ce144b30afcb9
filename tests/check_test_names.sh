#!/usr/bin/env bash
# ctest learns doctest case names through CMake lists, which split at ';':
# a case whose name holds one becomes two ctest entries that each run zero
# cases and pass. Refuse such names so no test can silently vanish.
set -euo pipefail
cd "$(dirname "$0")"
bad=$(grep -rnE 'TEST_CASE(_TEMPLATE)?\("[^"]*;' --include='*.cc' --include='*.h' . || true)
if [ -n "$bad" ]; then
  echo "test case names must not contain ';' (ctest would run nothing for them):"
  echo "$bad"
  exit 1
fi
echo "test case names: clean"
