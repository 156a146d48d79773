#!/usr/bin/env bash
# The project's test command (README "Set-up"): everything CI checks except
# formatting and lints. Runs the suite in debug and release, then the stack
# tests again with the mprotect guard-page fallback forced, so both stack
# paths are exercised on kernels that have MADV_GUARD_INSTALL.
#
# A failing test does not stop the others: each run uses --no-fail-fast,
# every step runs, and the script exits non-zero at the end if any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

failed=()
step() {
    local name="$1"
    shift
    echo "== $name"
    "$@" || failed+=("$name")
}

RUSTDOCFLAGS="-D warnings" step "docs (warnings are errors)" \
    cargo doc --no-deps --all-features --quiet

# The internal docs too: their links name the items the code relies on.
RUSTDOCFLAGS="-D warnings" \
    step "docs of private items (warnings are errors)" \
    cargo doc --no-deps --all-features --document-private-items --quiet

step "tests, debug" cargo test --no-fail-fast --all-features

step "tests, release" cargo test --no-fail-fast --release --all-features

GREENLET_FORCE_MPROTECT_GUARD=1 CARGO_TARGET_DIR=target/mprotect \
    step "stack tests with the mprotect guard-page fallback forced" \
    cargo test --no-fail-fast --release --test stacks --test kill --test sleep

if ((${#failed[@]})); then
    echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== all passed"
