#!/usr/bin/env bash
# The one test command (README "Testing", .ci/run): formatting, lints, real
# servers, every test. Needs only the Rust toolchain, apt and crates.io; what
# is missing gets installed, once. See docs/testing.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
services=scripts/services.sh
started=$SECONDS

step() {
  printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$*" >&2
}

# ---------------------------------------------------------------- installs --
# One function per tool, each a no-op when the tool is present. Add new ones
# here and call them from install_all.

install_rust_components() {
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}

install_services() {
  # ClickHouse from apt, tansu from crates.io (slow the first time).
  "$services" install
}

install_browser() {
  # Debian's chromium and chromedriver, for pulse-cli/tests/browser.rs.
  scripts/browser-deps.sh
}

install_faketime() {
  # Debian's libfaketime, for the clock-skew tests in pulse-cli/tests/run_live.rs.
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] && return
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends faketime)
  if [ "$(id -u)" != 0 ]; then apt=(sudo "${apt[@]}"); fi
  "${apt[@]}" || { apt-get update -q && "${apt[@]}"; }
}

install_sqlite3() {
  # Debian's sqlite3 shell, to give a topic a partition in tansu's catalogue
  # (tansu has no CreatePartitions) in pulse-io/tests/consume_topic_changes.rs.
  command -v sqlite3 >/dev/null && return
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sqlite3)
  if [ "$(id -u)" != 0 ]; then apt=(sudo "${apt[@]}"); fi
  "${apt[@]}" || { apt-get update -q && "${apt[@]}"; }
}

install_all() {
  install_faketime
  install_sqlite3
  install_rust_components
  install_services
  install_browser
}

# Tests replay recorded Binance captures from ../shared/data next to the
# repository (pulse_testkit::data_dir). A clone made elsewhere, as CI
# makes, finds them next to the repository it was cloned from instead.
locate_data_dir() {
  local origin
  [ -n "${PULSE_DATA_DIR:-}" ] || [ -d ../shared/data ] && return
  origin=$(git remote get-url origin 2>/dev/null) || return 0
  origin=${origin#file://}
  origin=${origin%/.git}
  if [ -d "$origin/../shared/data" ]; then
    PULSE_DATA_DIR=$(cd "$origin/../shared/data" && pwd -P)
    export PULSE_DATA_DIR
    echo "PULSE_DATA_DIR=$PULSE_DATA_DIR (next to origin $origin)" >&2
  fi
}

# ------------------------------------------------------------------ checks --

step "install missing tools"
install_all

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo check -p pulse-io with no feature, each feature alone, and kafka + clickhouse"
# What a library user may pick; --all-features above does not see a
# combination that fails alone (kafka + clickhouse once did).
for features in "" binance replay kafka clickhouse kafka,clickhouse; do
  cargo check --quiet -p pulse-io --no-default-features --features "$features"
done

step "cargo package -p pulse-core -p pulse-io --all-features (builds the packaged crates)"
# The published crates build from their .crate files alone: manifests,
# READMEs, versioned path dependencies, and every file they embed (the DDL
# once lived outside pulse-io and --no-verify hid it). --allow-dirty so
# uncommitted work does not fail a developer's run; CI's clone is clean.
cargo package --allow-dirty -p pulse-core -p pulse-io --all-features

step "cargo doc --no-deps -p pulse-core -p pulse-io --all-features (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p pulse-core -p pulse-io --all-features

step "start services (ClickHouse, tansu memory, tansu sqlite)"
# Services a developer already had running stay up afterwards; the ones
# started here stop on any exit, failed or not.
stopped=$("$services" status | sed -n 's/: stopped$//p' | tr '\n' ' ')
if [ -n "$stopped" ]; then
  trap 'step "stop services"; "$services" down $stopped' EXIT
fi
services_env=$("$services" up)
eval "$services_env"
echo "$services_env" >&2

step "cargo test --workspace --all-targets --all-features"
locate_data_dir
cargo test --workspace --all-targets --all-features --no-fail-fast

step "cargo test --workspace --doc --all-features"
cargo test --workspace --doc --all-features --no-fail-fast

step "all checks passed"
