#!/usr/bin/env bash
# dpnode quickstart: installs what is missing, builds, plans the privacy
# budget of the four bundled hospital sites (UCI heart disease: Cleveland,
# Hungarian, Switzerland, VA Long Beach), then runs them as four real dpnode
# processes on this machine: each trains on its own records only, under its
# own ledger, and they average their DP-noised models over the secure channel.
# Ends with a table: per site, epsilon spent of its budget and the accuracy
# and AUROC of the shared model next to that site's local-only model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh --target dpnode >/dev/null
echo
echo "== What each site's budget buys: epsilon = 3 at delta = 1e-5 (RDP and PRV accountants) =="
./build/dpnode --log-level warn privacy plan examples/heart/sites/{cleveland,hungarian,switzerland,va}.toml
./build/dpnode --log-level warn privacy plan --accountant prv examples/heart/sites/{cleveland,hungarian,switzerland,va}.toml
echo
echo "== Four hospitals train together: four dpnode processes on 127.0.0.1 =="
./examples/heart/demo.sh
