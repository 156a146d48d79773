#!/usr/bin/env bash
# Builds every comparison package in both stated profiles and runs each
# benchmark, then prints one summary table per profile.
#
#   bash benches/compare/run_all.sh                 # both profiles, defaults
#   PROFILES=fat bash benches/compare/run_all.sh    # one profile
#   QUICK=1 bash benches/compare/run_all.sh         # smoke run: small sizes, 1 rep
#
# Profiles: `release` (cargo's defaults, what `cargo build --release` gives
# users) and `fat` (release + fat LTO + one codegen unit). Every side of a
# comparison is in one binary, so it is built with the same profile; each
# run prints its profile in its header. Logs go to
# benches/compare/target/run_all/<profile>/<package>.log.
#
# Run it on an otherwise idle machine: every figure is the median of fresh
# processes pinned to one core, but a busy machine still moves them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
profiles="${PROFILES:-release fat}"
quick="${QUICK:-}"

# The HTTP benchmark needs wrk (and taskset, from util-linux).
command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
command -v taskset >/dev/null || (apt-get update && apt-get install -y util-linux)

profile_flag() { if [ "$1" = release ]; then echo --release; else echo "--profile $1"; fi; }

# Does package directory $1 define profile $2? (`release` always exists.)
has_profile() { [ "$2" = release ] || grep -q "^\[profile\.$2\]" "$1/Cargo.toml"; }

run() { # <profile> <dir> <log name> <args...>
    local p="$1" dir="$2" name="$3"
    shift 3
    local log="$here/target/run_all/$p/$name.log"
    mkdir -p "$(dirname "$log")"
    if ! has_profile "$here/$dir" "$p"; then
        echo "SKIP $name: $dir/Cargo.toml has no [profile.$p]" | tee "$log"
        return 0
    fi
    echo "== [$p] $name: (cd $dir && cargo run $(profile_flag "$p") -- $*)"
    # shellcheck disable=SC2046
    (cd "$here/$dir" && cargo build -q $(profile_flag "$p") &&
        cargo run -q $(profile_flag "$p") -- "$@") 2>&1 | tee "$log"
}

for p in $profiles; do
    if [ -n "$quick" ]; then
        run "$p" . compare switch --n 200000 --procs 1 --runs 1
        run "$p" . compare-spawn spawn --n 100000 --procs 1 --runs 1
        run "$p" . compare-sleep sleep100k --n 20000 --procs 1
        run "$p" queue queue --msgs 200000 --procs 1
        run "$p" http http --secs 1 --reps 1
        run "$p" echo echo --secs 1 --reps 1
        run "$p" download download --reps 1 --n 2000 --conc 200
    else
        run "$p" . compare all
        run "$p" queue queue
        run "$p" http http
        run "$p" echo echo
        run "$p" download download
    fi
done

# One summary table per profile, from the logs.
for p in $profiles; do
    d="$here/target/run_all/$p"
    echo
    echo "================ summary: profile $p ================"
    grep -h -m1 '^build profile' "$d"/compare*.log 2>/dev/null | head -n 1 || true
    echo "-- switch, spawn, sleepers (. package; median [min-max] of fresh pinned processes)"
    grep -h -e '^switch  *\(greenlet\|corosensei\|tokio\)  *ns/' -e '^spawn.all  *\(greenlet\|tokio\)  *ns/' \
        -e '^sleep1\(00k\|m\)  *\(greenlet\|tokio\)  *wall s ' "$d"/compare*.log 2>/dev/null || true
    grep -h -e '^switch  *greenlet .* round trip' -e '^spawn 1M' -e '^sleep1\(00k\|m\) cold' \
        "$d"/compare*.log 2>/dev/null || true
    echo "-- queue ping-pong (ns/message, median [min-max] of fresh pinned processes)"
    grep -h -A6 '^peer  ' "$d/queue.log" 2>/dev/null || true
    grep -h '^target' "$d/queue.log" 2>/dev/null || true
    echo "-- http (wrk; req/s and server CPU per request)"
    grep -h -A7 '^server  ' "$d/http.log" 2>/dev/null || true
    grep -h -e '^SCALING' -e '^RATIO' -e '^target' -e '^note' "$d/http.log" 2>/dev/null || true
    echo "-- echo"
    grep -h -e '^RESULT' -e '^RATIO' "$d/echo.log" 2>/dev/null || true
    echo "-- download"
    grep -h -e '^RESULT' -e '^RATIO' -e '^SKIP' "$d/download.log" 2>/dev/null || true
done
