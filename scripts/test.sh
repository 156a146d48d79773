#!/usr/bin/env bash
# The project's test command (README "Set-up"): everything CI checks except
# formatting and lints. Runs the suite in debug and release, then the stack
# tests again with the mprotect guard-page fallback forced, so both stack
# paths are exercised on kernels that have MADV_GUARD_INSTALL.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

echo "== tests, debug"
cargo test --all-features

echo "== tests, release"
cargo test --release --all-features

echo "== stack tests with the mprotect guard-page fallback forced"
GREENLET_FORCE_MPROTECT_GUARD=1 CARGO_TARGET_DIR=target/mprotect \
    cargo test --release --test stacks --test kill --test sleep
