/*
 * reentrancy: calls on a pool from inside its own callbacks.
 *  - From work, a call that would have to wait (blocking pmap_next / pmap_next_many with
 *    nothing ready, blocking pmap_submit / pmap_submit_many on a full pool, pmap_free) is
 *    PMAP_INVALID at once, with a message naming the call; the pool keeps working.
 *  - The same calls that can finish at once go ahead: timeout 0 (PMAP_TIMEOUT when nothing
 *    can be done), a blocking submit with room, a blocking next with a result ready.
 *  - pmap_cancel, pmap_close, pmap_stats_get, pmap_is_cancelled are allowed inside work.
 *  - Blocking calls on *another* pool from inside work are fine, as is freeing it.
 *  - The source callback (feeder thread) and on_drop (inside pmap_free) count as inside.
 */
#include "common.h"

/* A blocking call refused from inside must return at once, not after a wait. */
#define QUICK_MS 1000.0

struct ctx {
    pmap_pool *_Atomic pool;
    atomic_int started; /* the checking item has begun */
    atomic_int checks_done;
};

static pmap_pool *pool_of(struct ctx *c)
{
    pmap_pool *p;
    while ((p = atomic_load(&c->pool)) == NULL)
        sleep_us(100);
    return p;
}

#define CHECK_REFUSED_QUICKLY(call, fn)                                                    \
    do {                                                                                   \
        uint64_t t0_ = now_ns();                                                           \
        CHECK_ST(call, PMAP_INVALID);                                                      \
        CHECK(ms_since(t0_) < QUICK_MS, "%s took %.1f ms to refuse", fn, ms_since(t0_));   \
        CHECK_LAST_ERROR_NAMES(fn);                                                        \
    } while (0)

/* 1. A full pool (capacity 2, item 0 running, item 1 queued behind it, one worker). */
static int32_t work_full(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct item *it = item;
    if (it->flags == 1) {
        pmap_pool *pool = pool_of(c);
        /* The worker may start item 0 before item 1 is submitted: wait for a full pool. */
        while (test_stats(pool).in_flight < 2)
            sleep_us(100);
        pmap_result r;
        size_t n = 99;
        struct item *extra = item_new(1000);
        void *batch[1] = {extra};
        CHECK_REFUSED_QUICKLY(pmap_next(pool, &r, FOREVER), "pmap_next");
        CHECK_REFUSED_QUICKLY(pmap_next(pool, &r, 50 * MS), "pmap_next");
        CHECK_REFUSED_QUICKLY(pmap_next_many(pool, &r, 4, &n, FOREVER), "pmap_next_many");
        CHECK(n == 0, "got %zu", n);
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT); /* non-blocking goes ahead */
        CHECK_REFUSED_QUICKLY(pmap_submit(pool, extra, FOREVER), "pmap_submit");
        CHECK_REFUSED_QUICKLY(pmap_submit(pool, extra, 50 * MS), "pmap_submit");
        n = 99;
        CHECK_REFUSED_QUICKLY(pmap_submit_many(pool, batch, 1, &n, FOREVER), "pmap_submit_many");
        CHECK(n == 0, "accepted %zu", n);
        CHECK_ST(pmap_submit(pool, extra, NOWAIT), PMAP_TIMEOUT);
        CHECK_REFUSED_QUICKLY(pmap_free(pool), "pmap_free");
        pmap_stats s = test_stats(pool);
        CHECK(s.in_flight == 2, "in_flight %" PRIu64, s.in_flight);
        CHECK(!pmap_is_cancelled(pool), "cancelled");
        item_free(extra);
        atomic_fetch_add(&c->checks_done, 1);
    }
    return work_basic(NULL, state, item, result);
}

static void full_pool(void)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    pmap_options o = test_opts(work_full, &c, 1, 2, true);
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c.pool, pool);
    struct item *a = item_new(0), *b = item_new(1);
    a->flags = 1;
    CHECK_OK(pmap_submit(pool, a, FOREVER));
    CHECK_OK(pmap_submit(pool, b, FOREVER));
    pmap_result r;
    for (uint64_t i = 0; i < 2; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64 " status %d", r.index,
              r.status);
        result_release(&r);
    }
    CHECK(atomic_load(&c.checks_done) == 1, "the checks inside work did not run");
    /* The refused pmap_free left the pool intact: it still works. */
    for (uint64_t i = 2; i < 12; i++) {
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i, "index %" PRIu64, r.index);
        result_release(&r);
    }
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    check_stats_settled(pool, 12, 12, 0, 0);
    CHECK_OK(pmap_free(pool));
}

/* 2. Calls that can finish at once go ahead from inside work. */
static struct ledger g_ids;

static int32_t work_ahead(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct item *it = item;
    if (it->flags == 1) {
        atomic_store(&c->started, 1);
        pmap_pool *pool = pool_of(c);
        /* Room available: a blocking submit goes ahead. */
        CHECK_OK(pmap_submit(pool, item_new(100), FOREVER));
        struct item *two[2] = {item_new(101), item_new(102)};
        size_t n = 0;
        CHECK_OK(pmap_submit_many(pool, (void *const *)two, 2, &n, FOREVER));
        CHECK(n == 2, "accepted %zu", n);
        /* Wait (politely) until another item has finished, then take it with a blocking
         * next: a result is ready, so the call goes ahead. */
        while (test_stats(pool).succeeded < 1)
            sleep_us(200);
        pmap_result r;
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.status == PMAP_ITEM_OK && r.item != item, "took %" PRIu64, r.index);
        ledger_mark(&g_ids, ((struct item *)r.item)->id);
        result_release(&r);
        /* And non-blocking with nothing left ready. */
        size_t got = 7;
        pmap_status st = pmap_next_many(pool, &r, 1, &got, NOWAIT);
        if (st == PMAP_OK) {
            ledger_mark(&g_ids, ((struct item *)r.item)->id);
            result_release(&r);
        } else {
            CHECK_ST(st, PMAP_TIMEOUT);
            CHECK(got == 0, "got %zu", got);
        }
        atomic_fetch_add(&c->checks_done, 1);
    }
    return work_basic(NULL, state, item, result);
}

static void goes_ahead(void)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    ledger_init(&g_ids, 200);
    pmap_options o = test_opts(work_ahead, &c, 2, 16, false);
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c.pool, pool);
    struct item *a = item_new(0);
    a->flags = 1;
    CHECK_OK(pmap_submit(pool, a, FOREVER));
    while (atomic_load(&c.started) == 0) /* item 0 runs before item 1 is queued */
        sleep_us(100);
    CHECK_OK(pmap_submit(pool, item_new(1), FOREVER));
    /* Wait for the checks before closing: work submits more items. */
    while (atomic_load(&c.checks_done) == 0)
        sleep_ms(1);
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    while (pmap_next(pool, &r, FOREVER) == PMAP_OK) {
        ledger_mark(&g_ids, ((struct item *)r.item)->id);
        result_release(&r);
    }
    CHECK(ledger_total(&g_ids) == 5, "%zu of 5 items came back", ledger_total(&g_ids));
    const uint64_t want[] = {0, 1, 100, 101, 102};
    for (int i = 0; i < 5; i++)
        CHECK(atomic_load(&g_ids.counts[want[i]]) == 1, "item %" PRIu64 " missing", want[i]);
    check_stats_settled(pool, 5, 5, 0, 0);
    CHECK_OK(pmap_free(pool));
    ledger_destroy(&g_ids);
}

/* 3. pmap_cancel (and pmap_close) from inside work. */
static struct gate g_gate;

static int32_t work_cancel(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct item *it = item;
    if (it->flags == 2)
        gate_pass(&g_gate);
    if (it->flags == 1) {
        pmap_pool *pool = pool_of(c);
        CHECK_OK(pmap_close(pool));
        CHECK_OK(pmap_close(pool));
        CHECK_OK(pmap_cancel(pool));
        CHECK(pmap_is_cancelled(pool), "not cancelled after pmap_cancel inside work");
        CHECK_OK(pmap_cancel(pool));
        CHECK_ST(pmap_submit(pool, NULL, NOWAIT), PMAP_CANCELLED);
        atomic_fetch_add(&c->checks_done, 1);
    }
    return work_basic(NULL, state, item, result);
}

static void cancel_inside(void)
{
    enum { N = 30 };
    struct ctx c;
    memset(&c, 0, sizeof c);
    gate_init(&g_gate);
    pmap_options o = test_opts(work_cancel, &c, 1, N, true);
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c.pool, pool);
    /* Item 0 holds the only worker until everything is queued; item 3 cancels. */
    for (uint64_t i = 0; i < N; i++) {
        struct item *it = item_new(i);
        it->flags = i == 0 ? 2 : i == 3 ? 1 : 0;
        CHECK_OK(pmap_submit(pool, it, FOREVER));
    }
    gate_open(&g_gate);
    pmap_result r;
    uint64_t n = 0;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        CHECK(r.index == n, "index %" PRIu64, r.index);
        int want = r.index <= 3 ? PMAP_ITEM_OK : PMAP_ITEM_CANCELLED;
        CHECK(r.status == want, "index %" PRIu64 ": status %d, expected %d", r.index, r.status,
              want);
        result_release(&r);
        n++;
    }
    CHECK_ST(st, PMAP_DONE);
    CHECK(n == N, "%" PRIu64 " of %d came back", n, N);
    CHECK(atomic_load(&c.checks_done) == 1, "checks inside work did not run");
    check_stats_settled(pool, N, 4, 0, N - 4);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

/* 4. Another pool, used and freed from inside work: not our own, so blocking is fine. */
static int32_t work_other(void *ctx_, void *state, void *item, void **result)
{
    (void)ctx_;
    pmap_options o = test_opts(work_basic, NULL, 1, 2, true);
    pmap_pool *inner = test_pool(&o);
    pmap_result r;
    for (uint64_t i = 0; i < 5; i++) {
        CHECK_OK(pmap_submit(inner, item_new(500 + i), FOREVER));
        if (i >= 1) { /* capacity 2: keep one in flight, block for the other */
            CHECK_OK(pmap_next(inner, &r, FOREVER));
            result_release(&r);
        }
    }
    CHECK_OK(pmap_close(inner));
    CHECK_OK(pmap_next(inner, &r, FOREVER));
    result_release(&r);
    CHECK_ST(pmap_next(inner, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(inner));
    return work_basic(NULL, state, item, result);
}

static void other_pool(void)
{
    pmap_options o = test_opts(work_other, NULL, 2, 4, true);
    pmap_pool *pool = test_pool(&o);
    for (uint64_t i = 0; i < 4; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    for (uint64_t i = 0; i < 4; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
}

/* 5. The source runs on the pool's feeder thread: inside too. */
static int32_t source_inside(void *ctx_, void **out)
{
    struct ctx *c = ctx_;
    pmap_pool *pool = pool_of(c);
    if (atomic_load(&c->checks_done) == 0) {
        pmap_result r;
        CHECK_REFUSED_QUICKLY(pmap_next(pool, &r, FOREVER), "pmap_next");
        CHECK_REFUSED_QUICKLY(pmap_free(pool), "pmap_free");
        CHECK_ST(pmap_submit(pool, NULL, NOWAIT), PMAP_INVALID); /* source mode anyway */
        CHECK_OK(pmap_stats_get(pool, &(pmap_stats){0}));
        atomic_fetch_add(&c->checks_done, 1);
        *out = item_new(0);
        return 1;
    }
    return 0;
}

static void source_callback(void)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    pmap_options o = test_opts(work_basic, &c, 1, 4, true);
    o.source = source_inside;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&c.pool, pool);
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == 0 && r.status == PMAP_ITEM_OK, "status %d", r.status);
    result_release(&r);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK(atomic_load(&c.checks_done) == 1, "source checks did not run");
    CHECK_OK(pmap_free(pool));
}

/* 6. on_drop runs inside pmap_free: a nested pmap_free is refused, the outer one finishes. */
static atomic_int g_drop_calls;
static pmap_pool *_Atomic g_dropping_pool;

static void drop_inside(void *ctx, const pmap_result *r)
{
    (void)ctx;
    pmap_pool *pool = atomic_load(&g_dropping_pool);
    CHECK_REFUSED_QUICKLY(pmap_free(pool), "pmap_free");
    atomic_fetch_add(&g_drop_calls, 1);
    result_release(r);
}

static int32_t work_parked(void *ctx, void *state, void *item, void **result)
{
    gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void on_drop_inside(void)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_parked, NULL, 1, 8, true);
    o.on_drop = drop_inside;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&g_dropping_pool, pool);
    for (uint64_t i = 0; i < 4; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    gate_wait_parked(&g_gate, 1);
    gate_open(&g_gate);
    CHECK_OK(pmap_free(pool));
    CHECK(atomic_load(&g_drop_calls) == 4, "on_drop ran %d times", atomic_load(&g_drop_calls));
    gate_destroy(&g_gate);
}

/* 7. pmap_next from a running item while pmap_free waits for that item: it returns (a
 * queued item cancelled by the free, or TIMEOUT) instead of waiting on the free. */
static atomic_int g_inner_calls;
static atomic_int g_inner_status;

static int32_t work_next_in_free(void *ctx, void *state, void *item, void **result)
{
    if (((struct item *)item)->flags == 1) {
        gate_pass(&g_gate);
        pmap_result r;
        pmap_status st = pmap_next(atomic_load(&g_dropping_pool), &r, NOWAIT);
        if (st == PMAP_OK)
            result_release(&r);
        atomic_store(&g_inner_status, (int)st);
        atomic_fetch_add(&g_inner_calls, 1);
    }
    return work_basic(ctx, state, item, result);
}

static void drop_release(void *ctx, const pmap_result *r)
{
    (void)ctx;
    result_release(r);
}

static void *open_gate_later(void *arg)
{
    (void)arg;
    sleep_ms(50); /* long enough for pmap_free to be waiting for the running item */
    gate_open(&g_gate);
    return NULL;
}

static void next_while_freeing(void)
{
    gate_init(&g_gate);
    atomic_store(&g_inner_calls, 0);
    pmap_options o = test_opts(work_next_in_free, NULL, 1, 8, true);
    o.on_drop = drop_release;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&g_dropping_pool, pool);
    struct item *first = item_new(0);
    first->flags = 1;
    CHECK_OK(pmap_submit(pool, first, FOREVER));
    for (uint64_t i = 1; i < 4; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    gate_wait_parked(&g_gate, 1);
    pthread_t opener = spawn(open_gate_later, NULL);
    CHECK_OK(pmap_free(pool));
    join(opener);
    CHECK(atomic_load(&g_inner_calls) == 1, "the inner pmap_next did not return");
    int st = atomic_load(&g_inner_status);
    CHECK(st == PMAP_OK || st == PMAP_TIMEOUT, "inner pmap_next: %s",
          pmap_status_str((pmap_status)st));
    gate_destroy(&g_gate);
}

int main(void)
{
    watchdog(30);
    full_pool();
    goes_ahead();
    cancel_inside();
    other_pool();
    source_callback();
    on_drop_inside();
    next_while_freeing();
    check_all_released();
    printf("reentrancy: ok\n");
    return 0;
}
