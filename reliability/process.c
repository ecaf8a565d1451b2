/*
 * process: process-level tests, each in its own forked process under a watchdog
 * (RELIABILITY.md, guarantees 5 and 6). A hang is a failure ("hung: killed"), never a stuck CI.
 *
 *  - reentrant_*: every call that would wait on the pool from inside one of its own callbacks
 *    (work, source, on_drop, worker_exit) returns an error status within 1 s, the pool keeps
 *    working, and the outer call finishes: pmap_submit / pmap_submit_many on a full pool,
 *    pmap_next / pmap_next_many with nothing ready, pmap_free (must be PMAP_INVALID).
 *  - blocked_*: a work callback parked on a gate. (a) pmap_cancel, then the gate opens, then
 *    pmap_free returns within 1 s; (b) pmap_free is called while the callback is still parked
 *    (after pmap_cancel) and returns within 1 s of the gate opening; (c) the callback polls
 *    pmap_is_cancelled, so pmap_cancel alone releases it: pmap_free within 1 s, gate never
 *    opened. Queued items come back through on_drop exactly once, never run.
 *  - source_free_*: a pool with a `source` freed (or cancelled, or closed, and freed) right
 *    after pmap_new, 2,000 times: no crash, no hang. (Regression test: this aborted the
 *    process when pmap_free ran before the feeder thread had started.)
 *  - stats_consistent_*: 2 x 10^4 items through 8 workers (capacity 4) while two threads call
 *    pmap_stats_get non-stop: every sample has in_flight <= capacity and succeeded + failed
 *    + cancelled <= submitted, in submit mode and in source mode.
 *
 * Usage: process [--skip SUBSTRING] [SUBSTRING]   (runs the tests whose names contain the
 *        SUBSTRING and not the --skip one; valgrind runs skip stats_consistent_*: two threads
 *        reading stats non-stop take minutes under its serialised scheduler)
 */
#include "rel.h"

#define QUICK_MS 1000.0

/* ------------------------------------------------------------------------------------ */
/* Reentrancy                                                                            */
/* ------------------------------------------------------------------------------------ */

struct rctx {
    pmap_pool *_Atomic pool;
    atomic_int checks;
};

static pmap_pool *pool_of(struct rctx *c)
{
    pmap_pool *p;
    while ((p = atomic_load(&c->pool)) == NULL)
        sleep_us(50);
    return p;
}

/* The call returns within QUICK_MS, with a status other than OK (`want` when >= 0). */
#define REFUSED(call, want, what)                                                          \
    do {                                                                                   \
        pmap_status st__ = REL_TIMED(call, QUICK_MS, what);                                \
        CHECK(st__ != PMAP_OK, "%s from inside a callback returned PMAP_OK", what);        \
        if ((want) >= 0)                                                                   \
            CHECK(st__ == (want), "%s from inside a callback returned %s, expected %s",    \
                  what, pmap_status_str(st__), pmap_status_str(want));                     \
    } while (0)

/* Item flags == 1: from inside work on a full pool, every waiting call is refused. */
static int32_t work_reenter(void *ctx, void *state, void *item, void **result)
{
    struct rctx *c = ctx;
    struct item *it = item;
    if (it->flags == 1) {
        pmap_pool *pool = pool_of(c);
        /* Wait until the pool is full (capacity 2: this item and one queued). */
        while (test_stats(pool).in_flight < 2)
            sleep_us(100);
        struct item *extra = item_new(999);
        void *batch[2] = {extra, extra};
        pmap_result r[4];
        size_t n = 0;
        REFUSED(pmap_submit(pool, extra, FOREVER), PMAP_INVALID, "pmap_submit(forever)");
        REFUSED(pmap_submit(pool, extra, 500 * MS), PMAP_INVALID, "pmap_submit(500 ms)");
        REFUSED(pmap_submit_many(pool, batch, 2, &n, FOREVER), PMAP_INVALID,
                "pmap_submit_many(forever)");
        CHECK(n == 0, "submit_many accepted %zu", n);
        REFUSED(pmap_next(pool, &r[0], FOREVER), PMAP_INVALID, "pmap_next(forever)");
        REFUSED(pmap_next_many(pool, r, 4, &n, FOREVER), PMAP_INVALID,
                "pmap_next_many(forever)");
        CHECK(n == 0, "next_many got %zu", n);
        REFUSED(pmap_free(pool), PMAP_INVALID, "pmap_free");
        /* Non-waiting calls still answer. */
        CHECK_ST(pmap_submit(pool, extra, NOWAIT), PMAP_TIMEOUT);
        CHECK_ST(pmap_next(pool, &r[0], NOWAIT), PMAP_TIMEOUT);
        item_free(extra);
        atomic_fetch_add(&c->checks, 1);
    }
    return work_basic(NULL, state, item, result);
}

static void reentrant_work(void)
{
    struct rctx c;
    memset(&c, 0, sizeof c);
    for (int ordered = 0; ordered < 2; ordered++) {
        atomic_store(&c.pool, NULL);
        pmap_options o = test_opts(work_reenter, &c, 1, 2, ordered);
        pmap_pool *pool = test_pool(&o);
        atomic_store(&c.pool, pool);
        struct item *a = item_new(0), *b = item_new(1);
        a->flags = 1;
        CHECK_OK(pmap_submit(pool, a, FOREVER));
        CHECK_OK(pmap_submit(pool, b, FOREVER));
        while (atomic_load(&c.checks) < ordered + 1) /* close only after the checks */
            sleep_us(100);
        CHECK_OK(pmap_close(pool));
        pmap_result r;
        int got = 0;
        while (pmap_next(pool, &r, FOREVER) == PMAP_OK) {
            CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
            result_release(&r);
            got++;
        }
        CHECK(got == 2, "got %d results", got);
        CHECK_OK(pmap_free(pool));
    }
    CHECK(atomic_load(&c.checks) == 2, "the checks ran %d times", atomic_load(&c.checks));
    check_all_released();
}

/* The source runs on the feeder thread: waiting calls are refused there too. */
static atomic_int g_source_calls;

static int32_t source_reenter(void *ctx, void **out)
{
    struct rctx *c = ctx;
    pmap_pool *pool = pool_of(c);
    int call = atomic_fetch_add(&g_source_calls, 1);
    if (call == 0) {
        pmap_result r[2];
        size_t n = 7;
        REFUSED(pmap_next(pool, &r[0], FOREVER), PMAP_INVALID, "pmap_next in source");
        REFUSED(pmap_next_many(pool, r, 2, &n, FOREVER), PMAP_INVALID,
                "pmap_next_many in source");
        REFUSED(pmap_submit(pool, NULL, FOREVER), PMAP_INVALID, "pmap_submit in source");
        REFUSED(pmap_free(pool), PMAP_INVALID, "pmap_free in source");
        atomic_fetch_add(&c->checks, 1);
    }
    if (call >= 10)
        return 0;
    *out = item_new((uint64_t)call);
    return 1;
}

static void reentrant_source(void)
{
    struct rctx c;
    memset(&c, 0, sizeof c);
    pmap_options o = test_opts(work_basic, &c, 2, 4, true);
    o.source = source_reenter;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c.pool, pool);
    pmap_result r;
    int got = 0;
    while (pmap_next(pool, &r, FOREVER) == PMAP_OK) {
        CHECK(r.status == PMAP_ITEM_OK && r.index == (uint64_t)got, "index %" PRIu64, r.index);
        result_release(&r);
        got++;
    }
    CHECK(got == 10, "got %d", got);
    CHECK_OK(pmap_free(pool));
    CHECK(atomic_load(&c.checks) == 1, "source checks ran %d times", atomic_load(&c.checks));
    check_all_released();
}

/* on_drop and worker_exit run inside pmap_free. */
static struct rctx g_free_ctx;
static struct gate g_gate;

static void drop_reenter(void *ctx, const pmap_result *res)
{
    struct rctx *c = ctx;
    pmap_pool *pool = pool_of(c);
    pmap_result r;
    REFUSED(pmap_free(pool), PMAP_INVALID, "pmap_free in on_drop");
    REFUSED(pmap_next(pool, &r, FOREVER), -1, "pmap_next in on_drop");
    REFUSED(pmap_submit(pool, NULL, FOREVER), -1, "pmap_submit in on_drop");
    atomic_fetch_add(&c->checks, 1);
    result_release(res);
}

static atomic_int g_exit_checks;

static void exit_reenter(void *ctx, uint32_t id, void *state)
{
    (void)id;
    (void)state;
    struct rctx *c = ctx;
    pmap_pool *pool = pool_of(c);
    pmap_result r;
    REFUSED(pmap_free(pool), PMAP_INVALID, "pmap_free in worker_exit");
    REFUSED(pmap_next(pool, &r, FOREVER), -1, "pmap_next in worker_exit");
    atomic_fetch_add(&g_exit_checks, 1);
}

static void reentrant_free_callbacks(void)
{
    struct rctx *c = &g_free_ctx;
    memset(c, 0, sizeof *c);
    pmap_options o = test_opts(work_basic, c, 2, 16, false);
    o.on_drop = drop_reenter;
    o.worker_exit = exit_reenter;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c->pool, pool);
    for (uint64_t i = 0; i < 5; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    while (test_stats(pool).succeeded < 5) /* all finished, none handed back */
        sleep_us(200);
    uint64_t t0 = now_ns();
    CHECK_OK(pmap_free(pool));
    CHECK(ms_since(t0) < rel_limit_ms(5 * QUICK_MS), "pmap_free took %.1f ms", ms_since(t0));
    CHECK(atomic_load(&c->checks) == 5, "on_drop ran %d times", atomic_load(&c->checks));
    CHECK(atomic_load(&g_exit_checks) == 2, "worker_exit ran %d times",
          atomic_load(&g_exit_checks));
    check_all_released();
}

/* ------------------------------------------------------------------------------------ */
/* A callback blocked on a gate                                                          */
/* ------------------------------------------------------------------------------------ */

static atomic_int g_drops;
static bool g_poll_cancel;
static pmap_pool *_Atomic g_blocked_pool;

static int32_t work_blocked(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1) {
        if (g_poll_cancel) {
            pmap_pool *p;
            while ((p = atomic_load(&g_blocked_pool)) == NULL)
                sleep_us(50);
            gate_pass_or_cancel(&g_gate, p);
        } else {
            gate_pass(&g_gate);
        }
    }
    return work_basic(ctx, state, item, result);
}

static void drop_count(void *ctx, const pmap_result *r)
{
    (void)ctx;
    if (r->status == PMAP_ITEM_CANCELLED)
        CHECK(atomic_load(&((struct item *)r->item)->runs) == 0, "a dropped cancelled item ran");
    atomic_fetch_add(&g_drops, 1);
    result_release(r);
}

struct opener {
    uint64_t delay_ms;
    uint64_t opened_ns;
};

static void *open_later(void *arg)
{
    struct opener *op = arg;
    sleep_ms(op->delay_ms);
    op->opened_ns = now_ns();
    gate_open(&g_gate);
    return NULL;
}

/* mode 0: cancel, open, free. 1: cancel, free while parked, open from another thread.
 * 2: the callback polls pmap_is_cancelled; cancel, free, never open. */
static void blocked(int mode)
{
    enum { W = 2, QUEUED = 30 };
    gate_init(&g_gate);
    atomic_store(&g_drops, 0);
    g_poll_cancel = mode == 2;
    atomic_store(&g_blocked_pool, NULL);
    pmap_options o = test_opts(work_blocked, NULL, W, 64, true);
    o.on_drop = drop_count;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&g_blocked_pool, pool);
    for (uint64_t i = 0; i < W; i++) {
        struct item *it = item_new(i);
        it->flags = 1;
        CHECK_OK(pmap_submit(pool, it, FOREVER));
        gate_wait_parked(&g_gate, (int)i + 1);
    }
    for (uint64_t i = W; i < W + QUEUED; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    CHECK_OK(pmap_cancel(pool));
    uint64_t t0;
    if (mode == 0) {
        gate_open(&g_gate);
        t0 = now_ns();
        CHECK_OK(pmap_free(pool));
    } else if (mode == 1) {
        struct opener op = {100, 0};
        pthread_t t = spawn(open_later, &op);
        CHECK_OK(pmap_free(pool));
        uint64_t done = now_ns();
        join(t);
        CHECK(done >= op.opened_ns, "pmap_free returned before the parked callbacks finished");
        t0 = op.opened_ns;
        CHECK((double)(done - t0) / 1e6 < rel_limit_ms(QUICK_MS),
              "pmap_free returned %.1f ms after the gate opened", (double)(done - t0) / 1e6);
        t0 = done; /* measured above */
    } else {
        t0 = now_ns();
        CHECK_OK(pmap_free(pool));
    }
    CHECK(ms_since(t0) < rel_limit_ms(QUICK_MS), "pmap_free took %.1f ms", ms_since(t0));
    CHECK(atomic_load(&g_drops) == W + QUEUED, "on_drop ran %d times, expected %d",
          atomic_load(&g_drops), W + QUEUED);
    gate_destroy(&g_gate);
    check_all_released();
}

static void blocked_cancel_open_free(void) { blocked(0); }
static void blocked_free_while_parked(void) { blocked(1); }
static void blocked_polling_cancel_free(void) { blocked(2); }

/* ------------------------------------------------------------------------------------ */
/* A source pool freed at once                                                           */
/* ------------------------------------------------------------------------------------ */

static int32_t source_empty(void *ctx, void **out)
{
    (void)ctx;
    (void)out;
    return 0;
}

static int32_t source_endless(void *ctx, void **out)
{
    (void)ctx;
    *out = NULL;
    return 1;
}

static int32_t work_nothing(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    (void)item;
    *result = NULL;
    return 0;
}

static void source_free(int how)
{
    for (int i = 0; i < 2000; i++) {
        pmap_options o = test_opts(work_nothing, NULL, 1 + i % 3, 4, i % 2);
        o.source = how == 3 ? source_endless : source_empty;
        pmap_pool *pool = test_pool(&o);
        if (how == 1)
            CHECK_OK(pmap_cancel(pool));
        if (how == 2)
            CHECK_OK(pmap_close(pool));
        CHECK_OK(REL_TIMED(pmap_free(pool), 2000, "pmap_free"));
    }
}

static void source_free_at_once(void) { source_free(0); }
static void source_cancel_free(void) { source_free(1); }
static void source_close_free(void) { source_free(2); }
static void source_endless_free(void) { source_free(3); }

/* ------------------------------------------------------------------------------------ */
/* pmap_stats_get is consistent while a pool runs                                        */
/* ------------------------------------------------------------------------------------ */

enum { STATS_ITEMS = 20000 };
static pmap_pool *_Atomic g_stats_pool;
static atomic_int g_stats_stop;
static atomic_ullong g_stats_samples, g_stats_bad;
static uint32_t g_stats_cap;

static int32_t source_count(void *ctx, void **out)
{
    atomic_ullong *n = ctx;
    if (atomic_fetch_add(n, 1) >= STATS_ITEMS)
        return 0;
    *out = NULL;
    return 1;
}

static void *stats_hammer(void *arg)
{
    (void)arg;
    pmap_pool *pool = atomic_load(&g_stats_pool);
    while (!atomic_load(&g_stats_stop)) {
        pmap_stats s;
        CHECK_OK(pmap_stats_get(pool, &s));
        atomic_fetch_add(&g_stats_samples, 1);
        if (s.in_flight > g_stats_cap || s.succeeded + s.failed + s.cancelled > s.submitted) {
            if (atomic_fetch_add(&g_stats_bad, 1) == 0)
                fprintf(stderr,
                        "inconsistent stats: submitted %" PRIu64 ", succeeded %" PRIu64
                        ", failed %" PRIu64 ", cancelled %" PRIu64 ", in_flight %" PRIu64
                        " (capacity %u)\n",
                        s.submitted, s.succeeded, s.failed, s.cancelled, s.in_flight,
                        g_stats_cap);
        }
    }
    return NULL;
}

/* 2 x 10^4 cheap items through 8 workers while two threads read the stats non-stop. */
static void stats_consistent(bool source)
{
    atomic_ullong pulled = 0;
    g_stats_cap = 4;
    pmap_options o = test_opts(work_nothing, &pulled, 8, g_stats_cap, false);
    if (source)
        o.source = source_count;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&g_stats_pool, pool);
    pthread_t h1 = spawn(stats_hammer, NULL), h2 = spawn(stats_hammer, NULL);
    pmap_result r;
    uint64_t got = 0;
    if (!source) {
        for (uint64_t i = 0; i < STATS_ITEMS;) {
            pmap_status st = pmap_submit(pool, NULL, NOWAIT);
            if (st == PMAP_OK) {
                i++;
                continue;
            }
            CHECK_ST(st, PMAP_TIMEOUT);
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            got++;
        }
        CHECK_OK(pmap_close(pool));
    }
    while (pmap_next(pool, &r, FOREVER) == PMAP_OK)
        got++;
    atomic_store(&g_stats_stop, 1);
    join(h1);
    join(h2);
    CHECK(got == STATS_ITEMS, "got %" PRIu64, got);
    CHECK(atomic_load(&g_stats_bad) == 0,
          "%llu of %llu pmap_stats_get samples were inconsistent (%s mode)",
          atomic_load(&g_stats_bad), atomic_load(&g_stats_samples),
          source ? "source" : "submit");
    CHECK_OK(pmap_free(pool));
}

static void stats_consistent_submit(void) { stats_consistent(false); }
static void stats_consistent_source(void) { stats_consistent(true); }

/* ------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*fn)(void);
    unsigned limit_s;
} TESTS[] = {
    {"reentrant_work", reentrant_work, 10},
    {"reentrant_source", reentrant_source, 10},
    {"reentrant_on_drop_and_worker_exit", reentrant_free_callbacks, 10},
    {"blocked_cancel_open_free", blocked_cancel_open_free, 10},
    {"blocked_free_while_parked", blocked_free_while_parked, 10},
    {"blocked_polling_cancel_free", blocked_polling_cancel_free, 10},
    {"source_free_at_once", source_free_at_once, 30},
    {"source_cancel_free", source_cancel_free, 30},
    {"source_close_free", source_close_free, 30},
    {"source_endless_free", source_endless_free, 30},
    {"stats_consistent_submit", stats_consistent_submit, 60},
    {"stats_consistent_source", stats_consistent_source, 60},
};

int main(int argc, char **argv)
{
    const char *filter = "", *skip = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = rel_opt(argc, argv, &i, "--skip")))
            skip = v;
        else
            filter = argv[i];
    }
    int passed = 0, failed = 0;
    printf("process: each test in its own process with a watchdog\n");
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (!strstr(TESTS[i].name, filter) || (skip && strstr(TESTS[i].name, skip)))
            continue;
        if (rel_run_isolated(TESTS[i].name, TESTS[i].fn, TESTS[i].limit_s))
            passed++;
        else
            failed++;
    }
    printf("process: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
