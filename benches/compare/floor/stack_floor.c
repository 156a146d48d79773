// The kernel's floor under a cold greenlet sleeper: what preparing one new
// 256 KiB guarded stack costs, with exactly the syscalls greenlet makes
// (src/fiber/stack.rs): in one MAP_NORESERVE region, per batch of 64 slots,
// one process_madvise(MADV_POPULATE_WRITE) over their top pages and one
// process_madvise(MADV_GUARD_INSTALL) over their lowest pages. Nothing
// else runs: no runtime, no context switch. Run it pinned like the
// benchmark children:
//
//   cc -O2 -o stack_floor stack_floor.c && taskset -c 1 ./stack_floor 1000000
//
// n stacks prepared on one core cannot take less than what this prints, so
// "n greenlets sleeping 1 s, cold, pinned to one core" cannot finish before
// 1 s + that (plus the runtime's own spawn, switch and wake work).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SLOT (256UL << 10)
#define BATCH 64
#define MADV_POPULATE_WRITE_ 23
#define MADV_GUARD_INSTALL_ 102
#define PIDFD_SELF_THREAD_ (-10000)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void advise(struct iovec *v, int n, int advice) {
    if (syscall(SYS_process_madvise, PIDFD_SELF_THREAD_, v, n, advice, 0) < 0) {
        perror("process_madvise");
        exit(1);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long page = sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, n * SLOT, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    struct iovec v[BATCH];
    double t = now();
    for (long i = 0; i < n; i += BATCH) {
        int k = 0;
        for (; k < BATCH && i + k < n; k++) {
            v[k].iov_base = base + (i + k + 1) * SLOT - page;
            v[k].iov_len = page;
        }
        advise(v, k, MADV_POPULATE_WRITE_);
        for (int j = 0; j < k; j++) {
            v[j].iov_base = base + (i + j) * SLOT;
        }
        advise(v, k, MADV_GUARD_INSTALL_);
    }
    double el = now() - t;
    printf("%ld guarded stacks prepared (top page + guard): %.3f s, %.0f ns/stack\n", n, el,
           el * 1e9 / n);
    return 0;
}
