/*
 * fork: fork() while a pool has items running and queued and a consumer thread is inside
 * pmap_next. In the child, every call on the inherited pool answers PMAP_FORKED, pmap_free
 * releases it without hanging and without running any callback, and a new pool in the
 * child processes 10^4 items (under alarm(10)). The parent's pool is unaffected: every
 * item comes back exactly once. Repeated 20 times.
 * Under a wrapper (valgrind) the child ends by exec'ing /bin/true, see child().
 */
#include "common.h"

#include <sys/wait.h>

enum { FORKS = 20, BATCH = 24, CHILD_ITEMS = 10000 };

static atomic_int g_callbacks_in_child; /* on_drop / worker_exit calls seen in the child */
static pid_t g_parent;

static void on_drop(void *ctx, const pmap_result *r)
{
    (void)ctx;
    if (getpid() != g_parent)
        atomic_fetch_add(&g_callbacks_in_child, 1);
    result_release(r);
}

static void worker_exit(void *ctx, uint32_t id, void *state)
{
    (void)ctx;
    (void)id;
    (void)state;
    if (getpid() != g_parent)
        atomic_fetch_add(&g_callbacks_in_child, 1);
}

struct consumer {
    pmap_pool *pool;
    struct ledger *ids;
    atomic_ullong got;
};

static void *consume(void *arg)
{
    struct consumer *c = arg;
    pmap_result r;
    pmap_status st;
    while ((st = pmap_next(c->pool, &r, FOREVER)) == PMAP_OK) {
        CHECK(r.status == PMAP_ITEM_OK, "parent: status %d", r.status);
        ledger_mark(c->ids, ((struct item *)r.item)->id);
        result_release(&r);
        atomic_fetch_add(&c->got, 1);
    }
    CHECK_ST(st, PMAP_DONE);
    return NULL;
}

/* The child pool's items are plain numbers, not struct items. */
static int32_t work_number(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    *result = item;
    return 0;
}

/* Runs in the child: only async-signal-safe things are guaranteed after fork() in a
 * multithreaded process, but pmap promises more, and that is what this checks. */
static void child(pmap_pool *inherited)
{
    watchdog(10);
    pmap_result r;
    pmap_stats s;
    size_t n = 7;
    void *items[1] = {NULL};
    CHECK_ST(pmap_submit(inherited, NULL, NOWAIT), PMAP_FORKED);
    CHECK_ST(pmap_submit(inherited, NULL, FOREVER), PMAP_FORKED);
    CHECK_ST(pmap_submit_many(inherited, items, 1, &n, FOREVER), PMAP_FORKED);
    CHECK(n == 0, "child: accepted %zu", n);
    CHECK_ST(pmap_next(inherited, &r, FOREVER), PMAP_FORKED);
    CHECK_ST(pmap_next(inherited, &r, NOWAIT), PMAP_FORKED);
    n = 7;
    CHECK_ST(pmap_next_many(inherited, &r, 4, &n, FOREVER), PMAP_FORKED);
    CHECK(n == 0, "child: got %zu", n);
    CHECK_ST(pmap_close(inherited), PMAP_FORKED);
    CHECK_ST(pmap_cancel(inherited), PMAP_FORKED);
    CHECK_ST(pmap_stats_get(inherited, &s), PMAP_FORKED);
    CHECK(pmap_last_error()[0] != '\0', "no message for PMAP_FORKED");
    (void)pmap_is_cancelled(inherited); /* answers without crashing */
    CHECK_OK(pmap_free(inherited));
    CHECK(atomic_load(&g_callbacks_in_child) == 0,
          "pmap_free in the child ran %d callbacks", atomic_load(&g_callbacks_in_child));

    /* A fresh pool works in the child. */
    struct ledger ids;
    ledger_init(&ids, CHILD_ITEMS);
    pmap_options o = test_opts(work_number, NULL, 2, 64, false);
    pmap_pool *pool = test_pool(&o);
    uint64_t next_id = 0, got = 0;
    while (got < CHILD_ITEMS) {
        if (next_id < CHILD_ITEMS) {
            pmap_status st = pmap_submit(pool, (void *)(uintptr_t)(next_id + 1), NOWAIT);
            if (st == PMAP_OK) {
                next_id++;
                continue;
            }
            CHECK_ST(st, PMAP_TIMEOUT);
        }
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.status == PMAP_ITEM_OK, "child pool: status %d", r.status);
        ledger_mark(&ids, (uint64_t)(uintptr_t)r.item - 1);
        got++;
    }
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    CHECK_OK(pmap_free(pool));
    fflush(stdout);
    /* Under valgrind (the harness sets PMAP_C_TEST_WRAPPED), skip the child's end-of-process
     * leak check by exec'ing true: the child necessarily leaks what the inherited pool held
     * (pmap leaks its queue on purpose, and no callback may run to hand items back). */
    if (getenv("PMAP_C_TEST_WRAPPED"))
        execl("/bin/true", "true", (char *)NULL);
    _exit(0);
}

int main(void)
{
    watchdog(60);
    g_parent = getpid();
    struct ledger ids;
    ledger_init(&ids, FORKS * BATCH);
    pmap_options o = test_opts(work_basic, NULL, 2, 2 * BATCH, false);
    o.on_drop = on_drop;
    o.worker_exit = worker_exit;
    pmap_pool *pool = test_pool(&o);
    struct consumer cons = {pool, &ids, 0};
    pthread_t tc = spawn(consume, &cons);

    for (int f = 0; f < FORKS; f++) {
        for (int i = 0; i < BATCH; i++) {
            struct item *it = item_new((uint64_t)(f * BATCH + i));
            it->cost_us = 200;
            CHECK_OK(pmap_submit(pool, it, FOREVER));
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
            child(pool);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork %d: the child failed (%s %d)", f,
              WIFEXITED(status) ? "exit status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        /* The parent's pool is unaffected. */
        pmap_stats s = test_stats(pool);
        CHECK(s.submitted == (uint64_t)(f + 1) * BATCH, "parent: submitted %" PRIu64,
              s.submitted);
        CHECK(!pmap_is_cancelled(pool), "the child's free cancelled the parent's pool");
    }
    CHECK_OK(pmap_close(pool));
    join(tc);
    CHECK(atomic_load(&cons.got) == FORKS * BATCH, "parent got %llu",
          (unsigned long long)atomic_load(&cons.got));
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, FORKS * BATCH, FORKS * BATCH, 0, 0);
    CHECK_OK(pmap_free(pool));
    check_all_released();
    printf("fork: ok (%d forks)\n", FORKS);
    return 0;
}
