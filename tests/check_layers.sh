#!/usr/bin/env bash
# Keeps the Env seam honest (docs/design.md, "Layers"): nothing in node/
# (outside node/asio/ and the CLI that wires main()), protocol/ or crypto/
# reads the system clock, sleeps, starts a thread or includes Asio; and
# LibTorch is included only under node/learn/. Run by ctest as layers/seam.
set -euo pipefail
cd "$(dirname "$0")/.."

scope=$(find node protocol crypto -type f \( -name '*.h' -o -name '*.cc' \) \
          -not -path 'node/asio/*' -not -path 'node/cli/*' -not -name main.cc | sort)
forbidden='std::chrono::(system_clock|steady_clock|high_resolution_clock)|std::this_thread|std::thread|std::async|pthread_create|\bsleep\(|usleep\(|nanosleep\(|clock_gettime|gettimeofday|\btime\((NULL|nullptr|0)\)|#include *[<"](boost/)?asio'
status=0
if [ -n "$scope" ]; then
  # Comments may name these things; only code lines count.
  hits=$(grep -nE "$forbidden" $scope | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
  if [ -n "$hits" ]; then
    echo "clock, sleep, thread or Asio use outside node/asio/:"
    echo "$hits"
    status=1
  fi
fi

torch=$(grep -rnE '#include *[<"](torch|ATen|c10)/' --include='*.h' --include='*.cc' \
          base crypto protocol node sim 2>/dev/null | grep -v '^node/learn/' || true)
if [ -n "$torch" ]; then
  echo "LibTorch included outside node/learn/:"
  echo "$torch"
  status=1
fi
files=$(echo "$scope" | grep -c . || true)
echo "checked $files files under node/, protocol/, crypto/: $([ $status = 0 ] && echo clean || echo VIOLATIONS)"
exit $status
