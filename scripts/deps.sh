#!/usr/bin/env bash
# Installs the Debian packages given as arguments when they are missing.
# Uses sudo when not root. Does nothing when everything is present.
set -euo pipefail
if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not installed (framehub needs Go ≥ 1.26: https://go.dev/dl/)" >&2
  exit 1
fi
missing=()
for p in "$@"; do
  # Read whole, not piped into grep -q: under pipefail an early grep exit can fail the pipeline.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == *"install ok installed"* ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing packages ${missing[*]} and no apt-get: install them with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
