#!/usr/bin/env bash
# Install every Debian package TORP needs to build, test and benchmark. Idempotent: packages
# already present are skipped, and apt is only consulted when something is missing.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config ccache
  nlohmann-json3-dev      # JSON
  libcli11-dev            # command-line parsing (header-only)
  libssl-dev              # SHA-256 of datasets (OpenSSL EVP)
  libxxhash-dev           # fast hashing in the sweep reader (header-only use)
  clang-14 libclang-rt-14-dev  # libFuzzer targets (scripts/fuzz.sh)
  libarmadillo-dev        # numeric core of the trainer
  libgtest-dev googletest # tests
  libbenchmark-dev        # benchmarks
  pybind11-dev python3-dev                # Python module
  python3-pytest python3-venv python3-pip # Python tests, pip install into a venv
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
