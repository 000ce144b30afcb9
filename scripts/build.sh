#!/usr/bin/env bash
# Configures and builds dpnode into build/ (RelWithDebInfo, Ninja, ccache when
# present). With CI=true warnings are errors. Extra arguments go to
# `cmake --build` (e.g. `--target dpnode`).
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi
cmake -S . -B build -G Ninja -DDPNODE_WERROR=$werror >/dev/null
cmake --build build "$@"
