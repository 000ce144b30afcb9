#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 30), seeded with its
# committed corpus. Exits non-zero if any fuzzer finds a crash, a leak, a
# sanitizer report or a violated property. See docs/fuzzing.md.
#
# Usage: ./scripts/fuzz.sh [--merge] [SECONDS] [TARGET...]
#   --merge   afterwards, rewrite tests/fuzz/corpus/<target>/ as its seed_*
#             files plus a minimal set of inputs (old corpus and this run)
#             covering every edge seen (off by default: runs never modify the
#             repository unless asked)
#   TARGET    run only these (default: all three)
# Environment: FUZZ_JOBS (default 1) parallel fuzzing jobs per target;
#   FUZZ_NICE (default 19) niceness of the fuzzers.
# Crash reproducers are written to build-fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

merge=0
seconds=30
targets=()
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    ''|*[!0-9]*) targets+=("$arg") ;;
    *) seconds=$arg ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(channel_frames_fuzz message_decode_fuzz channel_pair_fuzz)
fi
jobs=${FUZZ_JOBS:-1}
niceness=${FUZZ_NICE:-19}
# -jobs=1 would still fork a worker that logs to ./fuzz-0.log; only ask for
# workers when there is more than one.
parallel=""
if [ "$jobs" -gt 1 ]; then parallel="-jobs=$jobs -workers=$jobs"; fi

# Per-target libFuzzer options. -malloc_limit_mb turns any single allocation
# larger than the limit into a crash: the channel under attack has a 4 KiB
# message cap, the decoder's input is bounded by -max_len, and the pair
# target's largest legitimate buffer is a few 256 KiB messages.
declare -A opts=(
  [channel_frames_fuzz]="-max_len=16384 -malloc_limit_mb=8"
  [message_decode_fuzz]="-max_len=8192 -malloc_limit_mb=8"
  [channel_pair_fuzz]="-max_len=4096 -malloc_limit_mb=32"
)

for cc in clang clang++; do
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "error: $cc not found; run ./scripts/install_deps.sh (packages clang libclang-rt-14-dev)" >&2
    exit 1
  fi
done

echo "== building libFuzzer targets in build-fuzz/" >&2
CC=clang CXX=clang++ cmake -S tests/fuzz/standalone -B build-fuzz -G Ninja >/dev/null
cmake --build build-fuzz -- -j2 "${targets[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/$t"
  work="$scratch/$t"
  artifacts="$root/build-fuzz/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  # Fuzz in a copy so the committed corpus only changes with --merge.
  cp "$corpus"/* "$work"/ 2>/dev/null || true
  echo "== $t: ${seconds}s, seeded with $(ls "$corpus" | wc -l) committed inputs" >&2
  log="$root/build-fuzz/$t.log"
  # shellcheck disable=SC2086  # opts holds several flags
  if ! nice -n "$niceness" "build-fuzz/fuzz/$t" ${opts[$t]} -max_total_time="$seconds" \
      $parallel -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1; then
    status=1
    echo "FAIL: $t found a problem; log: build-fuzz/$t.log, reproducer in build-fuzz/artifacts/$t/" >&2
    grep -E "ERROR|property violated|SUMMARY|Test unit written" "$log" | head -20 >&2 || true
    for j in "$root"/fuzz-*.log; do [ -e "$j" ] && mv "$j" "$root/build-fuzz/"; done
    continue
  fi
  for j in "$root"/fuzz-*.log; do [ -e "$j" ] && cat "$j" >>"$log" && rm "$j"; done
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$log" \
    | sed "s/^/  $t: /" >&2 || true
  grep -E "^#[0-9]+.*DONE" "$log" | tail -1 | sed "s/^/  $t: /" >&2 || true
  if [ "$merge" -eq 1 ]; then
    # Rebuild the committed corpus as the generated seeds plus the fewest
    # inputs that reach every edge they miss. Edge coverage only
    # (-use_counters=0), so the corpus stays small enough to replay in the
    # normal test run.
    echo "== $t: merging new coverage into tests/fuzz/corpus/$t/" >&2
    merged="$scratch/$t.merged"
    mkdir -p "$merged"
    cp "$corpus"/seed_* "$merged"/ 2>/dev/null || true
    # shellcheck disable=SC2086
    nice -n "$niceness" "build-fuzz/fuzz/$t" ${opts[$t]} -use_counters=0 -merge=1 \
      "$merged" "$corpus" "$work" >>"$log" 2>&1
    find "$corpus" -maxdepth 1 -type f -delete
    cp "$merged"/* "$corpus"/
    echo "  $t: corpus now $(ls "$corpus" | wc -l) files, $(cat "$corpus"/* | wc -c) bytes" >&2
  fi
done
if [ "$status" -ne 0 ]; then
  echo "fuzzing found problems (see above)" >&2
else
  echo "fuzzing: no problems found in ${seconds}s per target" >&2
fi
exit "$status"
