#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh Debian machine (Python 3.11, root):
# system packages, a virtual environment in .venv, torch (CPU build, pinned), recon with test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libusb-1.0-0 libgl1 libglib2.0-0"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.recon-setup-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.recon-setup-*; touch "$stamp"
fi
