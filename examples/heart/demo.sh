#!/usr/bin/env bash
# The four-hospital heart-disease demo on one machine: real dpnode processes
# on 127.0.0.1, each with one hospital's data, its own identity and its own
# privacy ledger, gossiping over the secure channel.
#
#   examples/heart/demo.sh            uses ./build/dpnode (or $DPNODE)
#
# Environment: DPNODE (binary), DPNODE_DEMO_PORT (first of four ports,
# default 17400), DPNODE_DEMO_TIMEOUT (seconds, default 300),
# DPNODE_DEMO_KEEP=1 (keep the temp dir with logs, ledgers and models).
#
# It generates keys and peers.txt in a temp dir, starts the four daemons,
# waits for all to finish, trains each site's local-only baseline with
# `dpnode train --json` on the same configuration, and prints per site: ε spent
# of the budget, validation accuracy and AUROC of the shared model next to the
# local-only model. Leftover processes are killed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DPNODE=${DPNODE:-$root/build/dpnode}
port0=${DPNODE_DEMO_PORT:-17400}
timeout_s=${DPNODE_DEMO_TIMEOUT:-300}
sites=(cleveland hungarian switzerland va)

if [ ! -x "$DPNODE" ]; then
  echo "demo: no dpnode binary at $DPNODE (build first, or set DPNODE)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "demo: python3 is needed for the summary table" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dpnode-heart.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${DPNODE_DEMO_KEEP:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: working in $work"
: > "$work/peers.txt"
for i in "${!sites[@]}"; do
  s=${sites[$i]}
  mkdir -p "$work/$s"
  "$DPNODE" keygen --out "$work/$s/identity" --name "$s" --address "127.0.0.1:$((port0 + i))" \
    >> "$work/peers.txt"
  cat > "$work/$s/dpnode.toml" <<EOF
# $s's site configuration for the demo (docs/config.md lists every key).
[site]
name = "$s"

[data]
csv = "$here/data/$s.csv"
schema = "$here/schema.toml"

[privacy]
target_epsilon = 3.0
delta = 1e-5
accountant = "rdp"
expected_batch_size = 16
epochs = 20
clip_norm = 1.0

[train]
state_dir = "state"
seed = 1          # the same initial model everywhere

[network]
listen = "127.0.0.1:$((port0 + i))"
identity_dir = "identity"
consortium_id = "heart-demo"
gossip_interval_ms = 50
step_interval_ms = 25   # let gossip mix between local steps

[run]
progress_interval_s = 3
EOF
done
echo "demo: peers.txt"
sed 's/^/  /' "$work/peers.txt"

start=$(date +%s)
for s in "${sites[@]}"; do
  # Exactly as a site types it: dpnode.toml in the working directory.
  (cd "$work/$s" && exec "$DPNODE" --peers ../peers.txt > run.log 2>&1) &
  pids+=($!)
done
echo "demo: started ${#sites[@]} dpnode processes (pids ${pids[*]}); logs in $work/<site>/run.log"

failed=0
for i in "${!pids[@]}"; do
  p=${pids[$i]}
  while kill -0 "$p" 2>/dev/null; do
    if [ $(( $(date +%s) - start )) -ge "$timeout_s" ]; then
      echo "demo: timeout after ${timeout_s}s; stopping the sites" >&2
      for q in "${pids[@]}"; do kill -TERM "$q" 2>/dev/null || true; done
      failed=1
      break
    fi
    sleep 1
  done
  if ! wait "$p"; then
    echo "demo: ${sites[$i]} exited with an error; its log:" >&2
    tail -5 "$work/${sites[$i]}/run.log" >&2
    failed=1
  fi
done
echo "demo: the consortium finished in $(( $(date +%s) - start ))s"
for s in "${sites[@]}"; do
  echo "--- $s (last lines of run.log)"
  tail -n 3 "$work/$s/run.log" | sed 's/^/  /'
done

for s in "${sites[@]}"; do
  (cd "$work/$s" && "$DPNODE" train --json --config dpnode.toml --state-dir local-state \
     --out local.dpm > local.json 2> local.log) || { echo "demo: local baseline failed for $s" >&2; failed=1; }
done

# Every model also scored on the pooled test rows of all four sites.
all_configs=()
for s in "${sites[@]}"; do all_configs+=(--config "$work/$s/dpnode.toml"); done
for s in "${sites[@]}"; do
  "$DPNODE" eval --json --model "$work/$s/state/model.dpm" "${all_configs[@]}" \
    > "$work/$s/pooled-shared.json" 2>> "$work/$s/local.log" || failed=1
  "$DPNODE" eval --json --model "$work/$s/local.dpm" "${all_configs[@]}" \
    > "$work/$s/pooled-local.json" 2>> "$work/$s/local.log" || failed=1
done

python3 - "$work" "${sites[@]}" <<'EOF'
import json, os, sys
work, sites = sys.argv[1], sys.argv[2:]
def load(*parts):
    try:
        return json.load(open(os.path.join(work, *parts)))
    except (OSError, ValueError):
        return None
def pair(m, acc="accuracy", auc="auroc"):
    return f"{m[acc]:>5.3f} {m[auc]:>5.3f}" if m else f"{'-':>5} {'-':>5}"
print()
print(f"{'':<12} {'':>13} | {'own validation rows':^25} | {'pooled test rows (all sites)':^25}")
print(f"{'site':<12} {'eps spent':>13} | {'shared':^11}   {'local':^11} | {'shared':^11}   {'local':^11}")
print(f"{'':<12} {'of budget':>13} | {'acc   AUROC':^11}   {'acc   AUROC':^11} | {'acc   AUROC':^11}   {'acc   AUROC':^11}")
print("-" * 80)
pooled = {"shared": [], "local": []}
for s in sites:
    meta = load(s, "state", "model.json")
    local = load(s, "local.json")
    ps, pl = load(s, "pooled-shared.json"), load(s, "pooled-local.json")
    eps = f"{meta['epsilon_spent']:.2f} / {meta['epsilon_budget']:.2f}" if meta else "-"
    own_shared = meta.get("validation") if meta else None
    own_local = local["metrics"] if local else None
    if ps: pooled["shared"].append(ps)
    if pl: pooled["local"].append(pl)
    print(f"{s:<12} {eps:>13} | {pair(own_shared)}   {pair(own_local)} | {pair(ps)}   {pair(pl)}")
def mean(ms, k):
    return sum(m[k] for m in ms) / len(ms) if ms else float("nan")
print("-" * 80)
print(f"{'mean':<12} {'':>13} | {'':^11}   {'':^11} | "
      f"{mean(pooled['shared'], 'accuracy'):>5.3f} {mean(pooled['shared'], 'auroc'):>5.3f}   "
      f"{mean(pooled['local'], 'accuracy'):>5.3f} {mean(pooled['local'], 'auroc'):>5.3f}")
print()
print("shared: the consortium's model (each site's own export; they agree). local: the site")
print("trained alone (dpnode train) with its own, separate budget of the same size.")
EOF
exit $failed
