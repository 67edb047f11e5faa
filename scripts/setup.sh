#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh Debian machine (Python 3.11, root):
# system packages, a virtual environment in .venv, torch (CPU build, pinned), recon with test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql: the library tests start a throw-away server on loopback (tests/catalog_support.py)
APT_PACKAGES="libusb-1.0-0 libgl1 libglib2.0-0 chromium postgresql"
# node + npm for tools/ (glTF validator, report viewer bundle, browser tests)
command -v npm >/dev/null 2>&1 || APT_PACKAGES="$APT_PACKAGES nodejs npm"
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
  .venv/bin/python -m pip install -q -e ".[test,humans]"
  rm -f .venv/.recon-setup-*; touch "$stamp"
fi
# mediapipe (the "people" segmenter) without its declared deps: the ones it uses come with the
# humans extra above (see pyproject.toml). Its models ship in the wheel; nothing is downloaded later.
MEDIAPIPE=0.10.21
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('mediapipe') != '$MEDIAPIPE')" \
    2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps "mediapipe==$MEDIAPIPE"
fi

# Node tools pinned in tools/package-lock.json; the <model-viewer> bundle (Apache-2.0, three.js
# inside, MIT) is copied into the package so report.html can inline it offline.
nstamp=tools/node_modules/.recon-setup-$(cat tools/package.json tools/package-lock.json | sha256sum | cut -c1-16)
if [ ! -f "$nstamp" ]; then
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
  touch "$nstamp"
fi
mkdir -p recon/bake/static
cp -u tools/node_modules/@google/model-viewer/dist/model-viewer-umd.min.js recon/bake/static/model-viewer.min.js
cp -u tools/node_modules/@google/model-viewer/LICENSE recon/bake/static/LICENSE-model-viewer.txt
# CC0 Poly Haven environment maps (equirectangular OpenEXR, shipped by @pmndrs/assets as base64 data
# URLs in .exr.js modules): decoded into the package for `recon relight --env NAME` and the tests
mkdir -p recon/materials/envmaps
for js in tools/node_modules/@pmndrs/assets/hdri/*.exr.js; do
  exr="recon/materials/envmaps/$(basename "$js" .js)"
  if [ ! -s "$exr" ]; then
    sed -e 's/^[^,]*base64,//' -e "s/[\"'].*\$//" "$js" | base64 -d > "$exr.part" && mv "$exr.part" "$exr"
  fi
done
cp -u tools/node_modules/@pmndrs/assets/LICENSE recon/materials/envmaps/LICENSE-poly-haven-CC0.txt
