/*
 * fork_storm: 200 fork()s while the parent's pool is busy (RELIABILITY.md, guarantee 6).
 *
 * The parent keeps one pool busy the whole time: a producer thread submits items (random
 * costs of 0-300 us) with blocking pmap_submit, a consumer thread takes them with blocking
 * pmap_next, so at every fork there are items queued, running and finished, and pool threads
 * may hold the pool's locks. The main thread forks --forks times (default 200), 0-2 ms apart.
 *
 * In each child (alarm(10) watchdog; only the forking thread exists there):
 *  - every call on the inherited pool answers PMAP_FORKED (submit, submit_many, next,
 *    next_many with every timeout, close, cancel, stats_get), with a message; pmap_free
 *    releases it without running any callback (on_drop / worker_exit counters stay 0);
 *  - a new pool (2 workers, unordered, 3 producer/consumer patterns in turn) maps 10^4
 *    items: each comes back exactly once with the right value.
 * The parent waits for each child (15 s limit, then SIGKILL) and requires exit status 0.
 * After the storm its own pool is unaffected: never cancelled, every item back exactly once
 * with the right value, stats add up.
 *
 * Usage: fork_storm [--forks N] [--child-items N] [--seed S]
 */
#include "rel.h"

static uint64_t g_forks = 200, g_child_items = 10000;
static pid_t g_parent;
static atomic_int g_child_callbacks;

struct fitem {
    uint64_t id;
    uint32_t cost_us;
};

static int32_t work_parent(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    struct fitem *it = item;
    if (it->cost_us)
        sleep_us(it->cost_us);
    *result = (void *)(uintptr_t)(it->id * 3 + 1);
    return 0;
}

static void on_drop(void *ctx, const pmap_result *r)
{
    (void)ctx;
    (void)r;
    if (getpid() != g_parent)
        atomic_fetch_add(&g_child_callbacks, 1);
}

static void worker_exit(void *ctx, uint32_t id, void *state)
{
    (void)ctx;
    (void)id;
    (void)state;
    if (getpid() != g_parent)
        atomic_fetch_add(&g_child_callbacks, 1);
}

struct parent {
    pmap_pool *pool;
    atomic_int stop;
    atomic_ullong submitted, received;
    struct ledger ids;
    uint64_t max_items;
};

static void *parent_producer(void *arg)
{
    struct parent *p = arg;
    uint64_t rng = 42;
    for (uint64_t id = 0; id < p->max_items && !atomic_load(&p->stop); id++) {
        struct fitem *it = malloc(sizeof *it);
        CHECK(it != NULL, "out of memory");
        it->id = id;
        it->cost_us = (uint32_t)(rng_next(&rng) % 300);
        CHECK_OK(pmap_submit(p->pool, it, FOREVER));
        atomic_fetch_add(&p->submitted, 1);
    }
    CHECK_OK(pmap_close(p->pool));
    return NULL;
}

static void *parent_consumer(void *arg)
{
    struct parent *p = arg;
    pmap_result r;
    pmap_status st;
    while ((st = pmap_next(p->pool, &r, FOREVER)) == PMAP_OK) {
        struct fitem *it = r.item;
        CHECK(r.status == PMAP_ITEM_OK, "parent: status %d", r.status);
        CHECK((uintptr_t)r.value == it->id * 3 + 1, "parent: wrong value");
        ledger_mark(&p->ids, it->id);
        free(it);
        atomic_fetch_add(&p->received, 1);
    }
    CHECK_ST(st, PMAP_DONE);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */

static int32_t work_child(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    *result = (void *)((uintptr_t)item * 7);
    return 0;
}

struct child_pool {
    pmap_pool *pool;
    uint64_t n;
};

static void *child_producer(void *arg)
{
    struct child_pool *c = arg;
    for (uint64_t i = 1; i <= c->n; i++)
        CHECK_OK(pmap_submit(c->pool, (void *)(uintptr_t)i, FOREVER));
    CHECK_OK(pmap_close(c->pool));
    return NULL;
}

static void child(pmap_pool *inherited, int pattern)
{
    watchdog(10);
    pmap_result r[4];
    pmap_stats s;
    size_t n;
    void *items[2] = {NULL, NULL};
    const int64_t timeouts[] = {NOWAIT, 1 * MS, FOREVER};
    for (int t = 0; t < 3; t++) {
        CHECK_ST(pmap_submit(inherited, NULL, timeouts[t]), PMAP_FORKED);
        n = 7;
        CHECK_ST(pmap_submit_many(inherited, items, 2, &n, timeouts[t]), PMAP_FORKED);
        CHECK(n == 0, "child: accepted %zu", n);
        CHECK_ST(pmap_next(inherited, &r[0], timeouts[t]), PMAP_FORKED);
        n = 7;
        CHECK_ST(pmap_next_many(inherited, r, 4, &n, timeouts[t]), PMAP_FORKED);
        CHECK(n == 0, "child: got %zu", n);
    }
    CHECK_ST(pmap_stats_get(inherited, &s), PMAP_FORKED);
    CHECK_ST(pmap_close(inherited), PMAP_FORKED);
    CHECK_ST(pmap_cancel(inherited), PMAP_FORKED);
    CHECK(pmap_last_error()[0] != '\0', "no message for PMAP_FORKED");
    (void)pmap_is_cancelled(inherited);
    CHECK_OK(pmap_free(inherited));
    CHECK(atomic_load(&g_child_callbacks) == 0, "pmap_free in the child ran %d callbacks",
          atomic_load(&g_child_callbacks));

    /* A new pool in the child. */
    uint64_t N = g_child_items;
    struct ledger ids;
    ledger_init(&ids, N);
    pmap_options o = test_opts(work_child, NULL, 2, 64, false);
    pmap_pool *pool = test_pool(&o);
    uint64_t got = 0;
    if (pattern == 0) { /* one thread, non-blocking submit, drain when full */
        uint64_t next = 1;
        while (got < N) {
            if (next <= N) {
                pmap_status st = pmap_submit(pool, (void *)(uintptr_t)next, NOWAIT);
                if (st == PMAP_OK) {
                    next++;
                    continue;
                }
                CHECK_ST(st, PMAP_TIMEOUT);
            }
            CHECK_OK(pmap_next(pool, &r[0], FOREVER));
            CHECK((uintptr_t)r[0].value == (uintptr_t)r[0].item * 7, "child: wrong value");
            ledger_mark(&ids, (uint64_t)(uintptr_t)r[0].item - 1);
            got++;
        }
        CHECK_OK(pmap_close(pool));
    } else { /* a producer thread; this thread consumes (one by one or in batches) */
        struct child_pool c = {pool, N};
        pthread_t t = spawn(child_producer, &c);
        pmap_status st;
        for (;;) {
            n = 0;
            if (pattern == 1) {
                st = pmap_next(pool, &r[0], FOREVER);
                n = st == PMAP_OK;
            } else {
                st = pmap_next_many(pool, r, 4, &n, FOREVER);
            }
            if (st != PMAP_OK)
                break;
            for (size_t k = 0; k < n; k++) {
                CHECK((uintptr_t)r[k].value == (uintptr_t)r[k].item * 7, "child: wrong value");
                ledger_mark(&ids, (uint64_t)(uintptr_t)r[k].item - 1);
                got++;
            }
        }
        CHECK_ST(st, PMAP_DONE);
        join(t);
    }
    CHECK_ST(pmap_next(pool, &r[0], FOREVER), PMAP_DONE);
    CHECK(got == N, "child: %" PRIu64 " of %" PRIu64 " items", got, N);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    uint64_t seed = now_ns();
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = rel_opt(argc, argv, &i, "--forks")))
            g_forks = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--child-items")))
            g_child_items = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--seed")))
            seed = rel_parse_u64(v);
        else {
            fprintf(stderr, "fork_storm: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    watchdog_thread(600);
    g_parent = getpid();
    uint64_t t0 = now_ns();
    struct parent p;
    memset(&p, 0, sizeof p);
    p.max_items = 2000000; /* far more than 200 forks take; the ledger is 8 MB */
    ledger_init(&p.ids, p.max_items);
    pmap_options o = test_opts(work_parent, NULL, 3, 32, true);
    o.on_drop = on_drop;
    o.worker_exit = worker_exit;
    o.name = "storm";
    p.pool = test_pool(&o);
    pthread_t tc = spawn(parent_consumer, &p);
    pthread_t tp = spawn(parent_producer, &p);

    uint64_t rng = seed;
    double max_child_ms = 0;
    uint64_t busy_forks = 0;
    for (uint64_t f = 0; f < g_forks; f++) {
        sleep_us(rng_next(&rng) % 2000);
        pmap_stats before = test_stats(p.pool);
        fflush(stdout);
        fflush(stderr);
        uint64_t tf = now_ns();
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
            child(p.pool, (int)(f % 3));
        int status = 0;
        uint64_t deadline = tf + 15ull * watchdog_scale() * 1000000000ull;
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            CHECK(w >= 0, "waitpid: %s", strerror(errno));
            if (w == pid)
                break;
            if (now_ns() > deadline) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                CHECK(false, "fork %" PRIu64 ": the child hung (killed after 15 s)", f);
            }
            sleep_us(200);
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork %" PRIu64 " (seed %" PRIu64 "): the child failed (%s %d)", f, seed,
              WIFEXITED(status) ? "exit status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        if (ms_since(tf) > max_child_ms)
            max_child_ms = ms_since(tf);
        if (before.in_flight > 0)
            busy_forks++;
        CHECK(!pmap_is_cancelled(p.pool), "the child cancelled the parent's pool");
    }
    atomic_store(&p.stop, 1);
    join(tp);
    join(tc);
    uint64_t sub = atomic_load(&p.submitted);
    CHECK(atomic_load(&p.received) == sub, "parent: %llu of %" PRIu64 " came back",
          atomic_load(&p.received), sub);
    for (uint64_t i = 0; i < sub; i++)
        CHECK(atomic_load(&p.ids.counts[i]) == 1, "parent: item %" PRIu64 " came back %u times",
              i, atomic_load(&p.ids.counts[i]));
    check_stats_settled(p.pool, sub, sub, 0, 0);
    CHECK_OK(pmap_free(p.pool));
    ledger_destroy(&p.ids);
    printf("fork_storm: seed %" PRIu64 ", %" PRIu64 " forks with the parent's pool busy; each "
           "child: inherited pool answered PMAP_FORKED and was freed without callbacks, a new "
           "pool mapped %" PRIu64 " items (slowest child %.0f ms); %" PRIu64
           " forks saw items in flight just before; parent: %" PRIu64
           " items back exactly once (%.1f s)\n",
           seed, g_forks, g_child_items, max_child_ms, busy_forks, sub,
           ms_since(t0) / 1000.0);
    CHECK(busy_forks * 2 >= g_forks, "only %" PRIu64 " forks had items in flight", busy_forks);
    return 0;
}
