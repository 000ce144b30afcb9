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
# It runs the bundled site configurations (sites/*.toml, only their listen
# ports changed) from a temp dir: generates keys and peers.txt, starts the
# four daemons, waits for all to finish, trains each site's local-only
# baseline with `dpnode train --json` on the same configuration, and prints per
# site: ε spent of the budget, validation accuracy and AUROC of the shared
# model next to the local-only model. Leftover processes are killed on exit.
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
# The bundled site configurations as they are (examples/heart/sites/*.toml),
# run from a copy in the temp dir: their paths are relative to the file, so
# ../data and ../schema.toml are linked to the real ones and each site's key,
# ledger and model land in $work/sites/<site>/. Only the listen port is
# rewritten, so that the demo can run beside a consortium on 7401-7404.
mkdir -p "$work/sites"
ln -s "$here/data" "$work/data"
ln -s "$here/schema.toml" "$work/schema.toml"
: > "$work/sites/peers.txt"
for i in "${!sites[@]}"; do
  s=${sites[$i]}
  grep -q '^listen = "127.0.0.1:[0-9]*"' "$here/sites/$s.toml" ||
    { echo "demo: $here/sites/$s.toml has no listen = \"127.0.0.1:PORT\" line" >&2; exit 2; }
  sed "s/^listen = \"127.0.0.1:[0-9]*\"/listen = \"127.0.0.1:$((port0 + i))\"/" \
    "$here/sites/$s.toml" > "$work/sites/$s.toml"
  mkdir -p "$work/sites/$s"
  "$DPNODE" keygen --out "$work/sites/$s/identity" --name "$s" \
    --address "127.0.0.1:$((port0 + i))" >> "$work/sites/peers.txt"
done
echo "demo: peers.txt"
sed 's/^/  /' "$work/sites/peers.txt"

start=$(date +%s)
for s in "${sites[@]}"; do
  # network.peers in the file is the peers.txt beside it: no --peers needed.
  (cd "$work/sites/$s" && exec "$DPNODE" run --config "$work/sites/$s.toml" > run.log 2>&1) &
  pids+=($!)
done
echo "demo: started ${#sites[@]} dpnode processes (pids ${pids[*]}); logs in $work/sites/<site>/run.log"

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
    tail -5 "$work/sites/${sites[$i]}/run.log" >&2
    failed=1
  fi
done
echo "demo: the consortium finished in $(( $(date +%s) - start ))s"
for s in "${sites[@]}"; do
  echo "--- $s (last lines of run.log)"
  tail -n 3 "$work/sites/$s/run.log" | sed 's/^/  /'
done

for s in "${sites[@]}"; do
  # Its own ledger (--state-dir), not the site's: the comparison gives the
  # local model a separate budget of the same size.
  (cd "$work/sites/$s" && "$DPNODE" train --json --config "$work/sites/$s.toml" \
     --state-dir local-state --out local.dpm > local.json 2> local.log) || { echo "demo: local baseline failed for $s" >&2; failed=1; }
done

# Every model also scored on the pooled test rows of all four sites.
all_configs=()
for s in "${sites[@]}"; do all_configs+=(--config "$work/sites/$s.toml"); done
for s in "${sites[@]}"; do
  "$DPNODE" eval --json --model "$work/sites/$s/state/model.dpm" "${all_configs[@]}" \
    > "$work/sites/$s/pooled-shared.json" 2>> "$work/sites/$s/local.log" || failed=1
  "$DPNODE" eval --json --model "$work/sites/$s/local.dpm" "${all_configs[@]}" \
    > "$work/sites/$s/pooled-local.json" 2>> "$work/sites/$s/local.log" || failed=1
done

python3 - "$work/sites" "${sites[@]}" <<'EOF'
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
