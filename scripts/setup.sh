#!/usr/bin/env bash
# Installs what `peft` needs (Debian 12 packages) and builds it in build/. Idempotent: installs only what is
# missing and rebuilds only what changed. Works as root or through sudo.
#   scripts/setup.sh            # install + configure + build everything
#   PEFT_BUILD_TESTS=OFF scripts/setup.sh   # skip the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

packages=(
  cmake g++ make ccache pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libopenblas0-pthread    # without it LibTorch falls back to reference BLAS (~15x slower)
  libsentencepiece-dev libcli11-dev libyaml-cpp-dev libspdlog-dev libgtest-dev nlohmann-json3-dev libpng-dev libicu-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "[setup] need root or sudo to install: ${missing[*]}" >&2; exit 1; fi
  say "installing ${#missing[@]} missing package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "all packages present"
fi

# LibTorch's precompiled header is shared between targets; these settings let ccache cache through it.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
jobs=$(nproc)
say "configuring build/ (Release, tests ${PEFT_BUILD_TESTS:-ON})"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPEFT_BUILD_TESTS="${PEFT_BUILD_TESTS:-ON}" >/dev/null
say "building with $jobs jobs"
start=$(date +%s)
if ! cmake --build build -j"$jobs" > build/build.log 2>&1; then
  grep -E "error|Error" build/build.log | head -40 >&2
  echo "[setup] build failed; full log: build/build.log" >&2
  exit 1
fi
say "built build/peft in $(( $(date +%s) - start )) s"
