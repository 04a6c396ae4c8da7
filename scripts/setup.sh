#!/usr/bin/env bash
# Installs everything darkgan needs on a Debian machine: system packages (FluidSynth, the General
# MIDI SoundFonts, Chromium for the browser test) with apt-get when missing, then the Python
# package with pip (torch pinned to 2.13.0, CPU build). Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont
              opl3-soundfont chromium chromium-driver)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
stamp=".setup-stamp"
sig=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sig" ] || ! $PY -c "import darkgan, torch" 2>/dev/null; then
  echo "setup: installing Python packages (torch==2.13.0 CPU first, then darkgan[test])"
  $PY -m pip install -q "torch==2.13.0"
  # nsgt's sdist imports numpy in setup.py: build it against the installed numpy (timbre space)
  $PY -m pip install -q numpy && $PY -m pip install -q --no-build-isolation "nsgt>=0.19"
  $PY -m pip install -q -e ".[test]"
  echo "$sig" > "$stamp"
fi
echo "setup: ok ($($PY -c 'import torch; print("torch", torch.__version__)'))"
