#!/usr/bin/env bash
# dpnode quickstart: installs what is missing, builds, and plans the privacy
# budget of the four bundled hospital sites (UCI heart disease: Cleveland,
# Hungarian, Switzerland, VA Long Beach). Each site trains on its own records
# only; the plan shows how much noise DP-SGD needs so that the whole run costs
# each site's patients at most epsilon = 3 at delta = 1e-5.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh --target dpnode >/dev/null
echo
echo "== Privacy plan of the four example sites (RDP accountant, as Opacus) =="
./build/dpnode privacy plan examples/heart/sites/{cleveland,hungarian,switzerland,va}.toml
echo
echo "== The same budgets under the tighter PRV accountant: less noise for the same epsilon =="
./build/dpnode privacy plan --accountant prv examples/heart/sites/{cleveland,hungarian,switzerland,va}.toml
