#!/usr/bin/env bash
# Installs dpnode's build and run dependencies from Debian packages.
# Idempotent: when every package is already installed it changes nothing and
# does not touch the network. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libsodium-dev                 # crypto: X25519, ChaCha20-Poly1305, BLAKE2b, CSPRNG
  capnproto libcapnp-dev        # wire messages (serialization only)
  libboost-dev libboost-system-dev   # Asio transport
  libspdlog-dev libfmt-dev      # logging
  libcli11-dev                  # command line
  nlohmann-json3-dev            # JSON output, test vectors
  libtomlplusplus-dev           # configuration files
  doctest-dev                   # tests
  libbenchmark-dev              # bench/
  libtorch-dev                  # the learner (node/learn/)
  libopenblas0-pthread          # fast BLAS for LibTorch (the default one is the slow reference)
  python3                       # the quickstart demo's summary table
  clang libclang-rt-14-dev      # fuzzing: clang, libFuzzer and its sanitizers (scripts/fuzz.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: missing packages (${missing[*]}) and not root; run as root or install them" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
