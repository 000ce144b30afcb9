#!/usr/bin/env bash
# Daemon soak: N `dpnode run` processes on 127.0.0.1 gossiping for hours, with
# memory, file descriptors, threads, gossip counters and log sizes sampled
# throughout (docs/benchmarks.md, "Daemon soak").
#
#   bench/soak/daemon_soak.sh [--duration 2h] [--sites 4] [--gossip-ms 25]
#                             [--sample-s 5] [--out DIR] [--port 17600]
#                             [--log-max-bytes 32768] [--log-files 3] [--churn-s 0]
#
# Each site is one of the bundled heart-disease hospitals (cycled with a
# numeric suffix beyond four), set up as examples/heart/demo.sh does (keygen,
# peers.txt, dpnode.toml), with:
#   - run.exit_when_done = false: training spends the budget in seconds, then
#     the daemon keeps mixing and serving until the soak sends SIGTERM;
#   - a fast gossip interval (default 25 ms: 40 ticks/s per site, about 8x the
#     default 200 ms and 40x a 1 s interval, so 2 h here is 16 h resp. 80 h of
#     normal gossip);
#   - a progress line and status.json every 0.5 s, a checkpoint every 2 s;
#   - run.log_file with a small cap (default 32 KiB x (3 + 1) files), so that
#     rotation happens many times;
#   - the Prometheus endpoint on, scraped at every sample (exercises accept);
#   - with --churn-s S > 0, the last site is stopped (SIGTERM, which must exit
#     0) and restarted every S seconds: it resumes from its state directory,
#     runs no step (budget spent) and rejoins, so the other sites go through
#     link loss, reconnection and new peer records over and over. The bounds
#     are then checked on the other sites; the churned one is only reported.
#
# Output (default bench/soak/results/<UTC time>/): samples.csv (one row per
# site per sample), summary.txt / summary.json (bench/soak/soak_report.py;
# exit status 0 = PASS), soak.log, and work/ with every site's config, logs and
# state. All daemons are stopped on exit (SIGTERM, then SIGKILL after 15 s).
# DPNODE=path picks the binary (default build/dpnode); it is copied into the
# work dir first so that a rebuild during the soak does not matter.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
heart=$root/examples/heart
DPNODE=${DPNODE:-$root/build/dpnode}
PYTHON=${PYTHON:-/usr/bin/python3}

duration=2h
n_sites=4
gossip_ms=25
sample_s=5
out=""
port0=17600
log_max_bytes=32768
log_files=3
churn_s=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --sites) n_sites=$2; shift 2 ;;
    --gossip-ms) gossip_ms=$2; shift 2 ;;
    --sample-s) sample_s=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --port) port0=$2; shift 2 ;;
    --log-max-bytes) log_max_bytes=$2; shift 2 ;;
    --log-files) log_files=$2; shift 2 ;;
    --churn-s) churn_s=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# 90m, 2h, 45s, 600 (seconds) -> seconds.
to_seconds() {
  local v=$1
  case "$v" in
    *h) echo $(( ${v%h} * 3600 )) ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
duration_s=$(to_seconds "$duration")
[[ "$duration_s" =~ ^[0-9]+$ && "$duration_s" -ge 60 ]] || {
  echo "soak: --duration must be at least 60s (e.g. 10m, 2h), got '$duration'" >&2; exit 2; }
[[ "$churn_s" =~ ^[0-9]+$ ]] || { echo "soak: --churn-s must be whole seconds" >&2; exit 2; }
[[ "$n_sites" =~ ^[0-9]+$ && "$n_sites" -ge 2 ]] || { echo "soak: --sites must be >= 2" >&2; exit 2; }
[ -x "$DPNODE" ] || { echo "soak: no dpnode binary at $DPNODE (build it, or set DPNODE)" >&2; exit 2; }
[ -x "$PYTHON" ] || { echo "soak: $PYTHON not found (set PYTHON)" >&2; exit 2; }

# Every peer and metrics port must be free (a daemon would refuse to start).
for ((i = 0; i < n_sites; i++)); do
  for p in $((port0 + i)) $((port0 + 100 + i)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "soak: port $p is in use (peers use --port and up, metrics --port + 100 and up)" >&2
      exit 2
    fi
  done
done

[ -n "$out" ] || out=$here/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
mkdir -p "$work"
exec > >(tee -a "$out/soak.log") 2>&1

cp "$DPNODE" "$work/dpnode"
bin=$work/dpnode

hospitals=(cleveland hungarian switzerland va)
names=()
pids=()
sampler=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "$sampler" ] && kill -TERM "$sampler" 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      echo "soak: pid $p did not stop within 15 s of SIGTERM; killing it" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "soak: $n_sites sites, ${duration_s}s, gossip ${gossip_ms} ms, sample every ${sample_s}s"
echo "soak: output in $out"
: > "$work/peers.txt"
for ((i = 0; i < n_sites; i++)); do
  h=${hospitals[$((i % 4))]}
  s=$h
  [ "$i" -ge 4 ] && s=$h-$((i / 4))
  names+=("$s")
  mkdir -p "$work/$s/log"
  "$bin" keygen --out "$work/$s/identity" --name "$s" --address "127.0.0.1:$((port0 + i))" \
    >> "$work/peers.txt"
  cat > "$work/$s/dpnode.toml" <<EOF
# $s in the daemon soak (bench/soak/daemon_soak.sh; docs/config.md lists every key).
[site]
name = "$s"

[data]
csv = "$heart/data/$h.csv"
schema = "$heart/schema.toml"

[privacy]
target_epsilon = 3.0
delta = 1e-5
accountant = "rdp"
expected_batch_size = 16
epochs = 20
clip_norm = 1.0

[train]
state_dir = "state"
seed = 1

[network]
listen = "127.0.0.1:$((port0 + i))"
identity_dir = "identity"
consortium_id = "heart-soak"
gossip_interval_ms = $gossip_ms
step_interval_ms = 25

[run]
exit_when_done = false        # keep mixing and serving until SIGTERM
progress_interval_s = 0.5
checkpoint_interval_s = 2
log_file = "log/dpnode.log"
log_max_bytes = $log_max_bytes
log_files = $log_files
metrics_listen = "127.0.0.1:$((port0 + 100 + i))"
EOF
done

# stderr carries the same lines as the capped log_file; it goes to a plain
# file here (under systemd it would be the journal), measured separately.
start_site() {
  local i=$1 s=${names[$1]}
  (cd "$work/$s" && exec "$bin" run --peers ../peers.txt >> stdout.txt 2>> stderr.txt) &
  pids[$i]=$!
  echo "$!" > "$work/$s/pid"
}
for ((i = 0; i < n_sites; i++)); do start_site "$i"; done
echo "soak: started pids ${pids[*]}"

site_args=()
for ((i = 0; i < n_sites; i++)); do
  site_args+=("${names[$i]}:$work/${names[$i]}/pid:$((port0 + 100 + i))")
done
churned=()
[ "$churn_s" -gt 0 ] && churned=(--churn-site "${names[$((n_sites - 1))]}")
"$PYTHON" "$here/soak_report.py" sample --work "$work" --csv "$out/samples.csv" \
  --duration-s "$duration_s" --sample-s "$sample_s" "${churned[@]}" "${site_args[@]}" &
sampler=$!
restarts=0
churn_bad=0
if [ "$churn_s" -gt 0 ]; then
  last=$((n_sites - 1))
  while kill -0 "$sampler" 2>/dev/null; do
    for _ in $(seq "$churn_s"); do kill -0 "$sampler" 2>/dev/null && sleep 1; done
    kill -0 "$sampler" 2>/dev/null || break
    kill -TERM "${pids[$last]}" 2>/dev/null || true
    if ! wait "${pids[$last]}"; then
      echo "soak: churned ${names[$last]} exited non-zero after SIGTERM" >&2
      churn_bad=$((churn_bad + 1))
    fi
    start_site "$last"
    restarts=$((restarts + 1))
  done
  echo "soak: ${names[$last]} restarted $restarts times ($churn_bad unclean stops)"
fi
set +e
wait "$sampler"
sample_rc=$?
sampler=""
set -e

# A clean stop is part of the test: SIGTERM, and every daemon exits 0.
echo "soak: sampling done (rc $sample_rc); stopping the daemons with SIGTERM"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
exit_codes=()
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then exit_codes+=("${names[$i]}:0"); else exit_codes+=("${names[$i]}:$?"); fi
done
pids=()
echo "soak: exit codes ${exit_codes[*]}"

set +e
"$PYTHON" "$here/soak_report.py" summarize --csv "$out/samples.csv" \
  --gossip-ms "$gossip_ms" --log-max-bytes "$log_max_bytes" --log-files "$log_files" \
  --json "$out/summary.json" --exit-codes "${exit_codes[@]}" "${churned[@]}" \
  | tee "$out/summary.txt"
rc=${PIPESTATUS[0]}
set -e
[ "$sample_rc" = 0 ] || rc=1
[ "$churn_bad" = 0 ] || { echo "soak: FAIL: $churn_bad churn stops were unclean"; rc=1; }
echo "soak: results in $out"
exit "$rc"
