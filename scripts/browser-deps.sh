#!/usr/bin/env bash
# Installs what the dashboard's browser test (pulse-cli/tests/browser.rs)
# needs, once per machine: Debian's chromium and chromedriver. A no-op when
# both are present. Called by scripts/test.sh; see docs/dashboard.md.
set -euo pipefail

log() { printf 'browser-deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi

# Refresh the package lists only if the first try fails (a warm machine
# should not pay for `apt-get update`).
apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver)
log "apt-get install chromium chromium-driver"
if ! as_root "${apt[@]}"; then
  log "apt-get update, then retry"
  as_root apt-get update -q
  as_root "${apt[@]}"
fi
