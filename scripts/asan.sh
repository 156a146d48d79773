#!/usr/bin/env bash
# The AddressSanitizer job: the core, kill, sync, net, timeout and soundness
# tests built with `-Zsanitizer=address` on the machine's nightly toolchain.
# Every stack switch is annotated for ASan (corosensei's `sanitizer` support,
# switched on in Cargo.toml whenever ASan is), so reports on greenlet stacks
# are real; `detect_stack_use_after_return=1` also catches frames used after
# their greenlet switched away. Skipped, saying so, where no nightly
# toolchain (or no ASan runtime) is installed.
#
# Left out, each for a reason:
# - `monkey` (feature and tests): ASan's runtime defines its own
#   interceptors for the libc functions the hooks replace (`getaddrinfo`,
#   `read`, `poll`, ...), so the two cannot be linked into one program.
# - tests/stacks.rs: overflow tests fault on guard pages on purpose; ASan
#   installs its own SIGSEGV handler and reports those faults itself.
# - tests/block_forever.rs: its deadlocks keep a greenlet parked mid-unwind
#   when the root panics, and std's panic hook then prints a full
#   backtrace (it sees a panic inside a panic: the count is per thread),
#   which ASan's symbolizer takes minutes to produce.
# - sleep.rs's ten_thousand_greenlets_sleeping_100ms_finish_together and
#   idle_hub_uses_no_cpu_while_the_root_sleeps: a timing bound (10,000
#   sleepers in under 1 s) and a CPU-time bound (an idle hub under 50 ms in
#   1 s) that instrumented code misses at times; the same code paths run in
#   every other sleep test.
# - examples and servers tests: they run release binaries of the examples
#   (not instrumented), so nothing would be checked.
# - Leak detection (`detect_leaks=0`): greenlets parked when their thread
#   exits are leaked on purpose, with their stacks (see the crate docs,
#   "Soundness"), and the hub's thread-local state lives until exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "ASan job skipped: no nightly toolchain on this machine"
    exit 0
fi
libdir=$(rustc +nightly --print target-libdir)
if ! ls "$libdir"/librustc-nightly_rt.asan.a >/dev/null 2>&1; then
    echo "ASan job skipped: the nightly toolchain has no ASan runtime"
    exit 0
fi

target=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_stack_use_after_return=1:detect_leaks=0:abort_on_error=1"
export CARGO_TARGET_DIR=target/asan

tests=(hub join current kill sleep timeout cross_thread local
       threadpool soundness sync_event sync_mutex sync_queue sync_semaphore
       pool net_tcp net_udp net_unix net_faults net_dns
       lifecycle link scope select time_extras sync_channel sync_locks
       sync_queue_variants pool_apply net_short_reads net_interrupted_io stress
       thread_exit fork)
args=()
for t in "${tests[@]}"; do
    [ -f "tests/$t.rs" ] && args+=(--test "$t")
done
# `--target` keeps the sanitizer flags off build scripts and proc macros.
cargo +nightly test --no-fail-fast --target "$target" --lib "${args[@]}" -- --test-threads=2 \
    --skip ten_thousand_greenlets_sleeping_100ms_finish_together \
    --skip idle_hub_uses_no_cpu_while_the_root_sleeps
