#!/usr/bin/env bash
# Makes sure Debian's Chromium and the Noto CJK fonts are installed, for the browser tests
# (Playwright drives this Chromium; its own browser download cannot be reached here).
# Idempotent: quick when both are present. Installs with apt-get as root (or passwordless
# sudo); otherwise says what to install.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
CHROMIUM=/usr/bin/chromium
FONTS=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
[[ -x $CHROMIUM && -f $FONTS ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    log "Chromium or the CJK fonts are missing; install them: sudo apt-get install -y chromium fonts-noto-cjk"
    exit 1
  fi
fi
log "installing chromium and fonts-noto-cjk with apt-get ..."
t0=$(date +%s)
if ! { "${sudo[@]}" apt-get update &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    chromium fonts-noto-cjk; } </dev/null >/tmp/tsunagu-apt-chromium.log 2>&1; then
  tail -n 40 /tmp/tsunagu-apt-chromium.log >&2 || true
  log "apt-get failed"
  exit 1
fi
log "installed in $(($(date +%s) - t0))s"
