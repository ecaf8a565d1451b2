/*
 * sandbox: a source pool under a seccomp filter that forbids membarrier(2), the one
 * uncommon system call pmap makes (the feeder's hand-off, src/membarrier.rs).
 *  - a filter that fails the call (EPERM, as Docker's default profile does): the pool
 *    falls back to a fence per item and every item comes back, in order;
 *  - a filter that kills the process on the call, with PMAP_NO_MEMBARRIER=1: pmap never
 *    makes it, and every item comes back;
 *  - the same filter without the opt-out kills the process at pmap_new (so the opt-out,
 *    not a missing call, is what kept the previous case alive), and so does calling
 *    membarrier directly (the filter works).
 * Each case runs in a forked child that installs the filter, so the test itself is never
 * sandboxed. Linux only; elsewhere it prints a skip line.
 */
#include "common.h"

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#else
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

enum { N = 20000 };

/* Forbid membarrier: `action` is SECCOMP_RET_ERRNO | EPERM or SECCOMP_RET_KILL_PROCESS. */
static void forbid_membarrier(uint32_t action)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS failed");
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "seccomp filter refused");
}

static _Atomic uint64_t g_next;

static int32_t count_source(void *ctx, void **out)
{
    (void)ctx;
    uint64_t n = atomic_load(&g_next);
    if (n == N)
        return 0;
    *out = item_new(n);
    atomic_store(&g_next, n + 1);
    return 1;
}

/* A source pool runs N items; every one comes back in order. */
static void run_source_pool(void)
{
    atomic_store(&g_next, 0);
    pmap_options o = test_opts(work_basic, NULL, 2, 64, true);
    o.source = count_source;
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    for (uint64_t i = 0; i < N; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64, r.index);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    check_all_released();
}

enum mode { ERRNO_FILTER, KILL_FILTER_OPTED_OUT, KILL_FILTER_POOL, KILL_FILTER_DIRECT };

static void child(enum mode m)
{
    if (m == KILL_FILTER_OPTED_OUT)
        CHECK(setenv("PMAP_NO_MEMBARRIER", "1", 1) == 0, "setenv failed");
    forbid_membarrier(m == ERRNO_FILTER ? SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)
                                        : SECCOMP_RET_KILL_PROCESS);
    if (m == KILL_FILTER_DIRECT)
        syscall(SYS_membarrier, 0, 0, 0);
    else
        run_source_pool();
    _exit(0);
}

/* Run `m` in a child; returns its wait status. */
static int in_child(enum mode m)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0)
        child(m);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    return status;
}

static bool killed_by_sigsys(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

int main(void)
{
    watchdog(60);
    int s = in_child(ERRNO_FILTER);
    CHECK(WIFEXITED(s) && WEXITSTATUS(s) == 0,
          "with membarrier failing (EPERM) the source pool did not finish cleanly (status %d)",
          s);
    s = in_child(KILL_FILTER_DIRECT);
    CHECK(killed_by_sigsys(s), "the killing filter did not kill a direct call (status %d)", s);
    s = in_child(KILL_FILTER_POOL);
    CHECK(killed_by_sigsys(s),
          "a source pool under the killing filter survived without the opt-out (status %d): "
          "pmap no longer calls membarrier, so the opt-out case below proves nothing",
          s);
    s = in_child(KILL_FILTER_OPTED_OUT);
    CHECK(WIFEXITED(s) && WEXITSTATUS(s) == 0,
          "with PMAP_NO_MEMBARRIER=1 the source pool did not finish cleanly (status %d)", s);
    printf("sandbox: ok\n");
    return 0;
}

#else
int main(void)
{
    printf("sandbox: skipped (seccomp filters are only built for Linux on x86_64/aarch64)\n");
    return 0;
}
#endif
