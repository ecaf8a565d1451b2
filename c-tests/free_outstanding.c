/*
 * free_outstanding: pmap_free with items in every stage — finished but not handed back
 * (some OK with a value, some failed), running (parked until the free cancels the pool)
 * and queued (never started). on_drop runs exactly once for each item never returned by
 * pmap_next, on the thread calling pmap_free, with the right status (and its value when
 * OK); items already handed back are never dropped; worker_exit runs after every on_drop;
 * every item and value is released exactly once.
 */
#include "common.h"

enum {
    WORKERS = 2,
    FINISHED = 12, /* ids [0, 12): run to completion before the free */
    DELIVERED = 4, /* of those, ids [0, 4) are taken with pmap_next */
    RUNNING = WORKERS,
    QUEUED = 25,
    TOTAL = FINISHED + RUNNING + QUEUED,
};

struct ctx {
    pmap_pool *pool;
    struct gate gate;
    struct ledger ids;
    atomic_int work_done;
    atomic_int drops;
    atomic_int exits;
    atomic_int drops_seen_by_exit_min;
    pthread_t freeing_thread;
    bool ordered;
};

static int32_t work(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct item *it = item;
    if (it->flags == 1) {
        /* Running at free time: leaves when pmap_free cancels the pool. */
        bool by_cancel = gate_pass_or_cancel(&c->gate, c->pool);
        CHECK(by_cancel, "the gate is never opened: only the cancel of pmap_free lets it go");
    }
    int32_t rc = work_basic(NULL, state, item, result);
    atomic_fetch_add(&c->work_done, 1);
    return rc;
}

static bool is_failing(uint64_t id) { return id % 3 == 2 && id < FINISHED; }

static void on_drop(void *ctx_, const pmap_result *r)
{
    struct ctx *c = ctx_;
    CHECK(pthread_equal(pthread_self(), c->freeing_thread),
          "on_drop ran on another thread than the one calling pmap_free");
    CHECK(atomic_load(&c->exits) == 0, "on_drop after worker_exit");
    struct item *it = r->item;
    CHECK(it != NULL && it->magic == ITEM_LIVE, "on_drop got a bad item");
    CHECK(it->id == r->index, "on_drop: index %" PRIu64 " carries item %" PRIu64, r->index,
          it->id);
    if (it->id < FINISHED + RUNNING) {
        int want = is_failing(it->id) ? PMAP_ITEM_FAILED : PMAP_ITEM_OK;
        CHECK(r->status == want, "dropped item %" PRIu64 " has status %d, expected %d", it->id,
              r->status, want);
        CHECK(r->worker < WORKERS, "item that ran has worker %u", r->worker);
        CHECK(atomic_load(&it->runs) == 1, "item %" PRIu64 " ran %u times", it->id,
              atomic_load(&it->runs));
        if (want == PMAP_ITEM_OK)
            CHECK(r->value != NULL && ((struct value *)r->value)->id == it->id,
                  "dropped OK item %" PRIu64 " without its value", it->id);
        else
            CHECK(r->error == 77 && r->value == NULL, "dropped failed item: error %d value %p",
                  r->error, r->value);
    } else {
        CHECK(r->status == PMAP_ITEM_CANCELLED, "queued item %" PRIu64 " dropped with status %d",
              it->id, r->status);
        CHECK(r->worker == PMAP_NO_WORKER, "never-run item has worker %u", r->worker);
        CHECK(atomic_load(&it->runs) == 0, "queued item %" PRIu64 " was run", it->id);
    }
    ledger_mark(&c->ids, it->id);
    atomic_fetch_add(&c->drops, 1);
    result_release(r); /* frees the value (when OK) and the item */
}

static void worker_exit(void *ctx_, uint32_t id, void *state)
{
    (void)id;
    (void)state;
    struct ctx *c = ctx_;
    int d = atomic_load(&c->drops);
    int prev = atomic_load(&c->drops_seen_by_exit_min);
    if (d < prev)
        atomic_store(&c->drops_seen_by_exit_min, d);
    atomic_fetch_add(&c->exits, 1);
}

static void run(bool ordered)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    gate_init(&c.gate);
    ledger_init(&c.ids, TOTAL);
    atomic_init(&c.drops_seen_by_exit_min, 1 << 30);
    c.ordered = ordered;
    c.freeing_thread = pthread_self();

    pmap_options o = test_opts(work, &c, WORKERS, 256, ordered);
    o.on_drop = on_drop;
    o.worker_exit = worker_exit;
    c.pool = test_pool(&o);

    /* 1. Items that finish (some fail); wait until all ran; take the first DELIVERED. */
    for (uint64_t i = 0; i < FINISHED; i++) {
        struct item *it = item_new(i);
        it->fail_code = is_failing(i) ? 77 : 0;
        CHECK_OK(pmap_submit(c.pool, it, FOREVER));
    }
    while (atomic_load(&c.work_done) < FINISHED)
        sleep_us(200);
    pmap_result r;
    for (uint64_t i = 0; i < DELIVERED; i++) {
        CHECK_OK(pmap_next(c.pool, &r, FOREVER));
        if (ordered)
            CHECK(r.index == i, "index %" PRIu64, r.index);
        CHECK(r.index < FINISHED, "delivered index %" PRIu64, r.index);
        ledger_mark(&c.ids, r.index);
        result_release(&r);
    }
    /* Unordered delivery may have taken any finished ones: remember which. */
    uint64_t delivered_ids[DELIVERED];
    size_t nd = 0;
    for (uint64_t i = 0; i < FINISHED; i++)
        if (atomic_load(&c.ids.counts[i]))
            delivered_ids[nd++] = i;
    CHECK(nd == DELIVERED, "delivered %zu", nd);

    /* 2. Running: park every worker, one at a time (so each is free to take the next). */
    for (uint64_t i = FINISHED; i < FINISHED + RUNNING; i++) {
        struct item *it = item_new(i);
        it->flags = 1;
        CHECK_OK(pmap_submit(c.pool, it, FOREVER));
        gate_wait_parked(&c.gate, (int)(i - FINISHED) + 1);
    }
    /* 3. Queued behind them. */
    for (uint64_t i = FINISHED + RUNNING; i < TOTAL; i++)
        CHECK_OK(pmap_submit(c.pool, item_new(i), FOREVER));

    pmap_stats s = test_stats(c.pool);
    CHECK(s.in_flight == TOTAL - DELIVERED, "in_flight %" PRIu64 " before free", s.in_flight);

    CHECK_OK(pmap_free(c.pool));

    int drops = atomic_load(&c.drops);
    CHECK(drops == TOTAL - DELIVERED, "on_drop ran %d times, expected %d", drops,
          TOTAL - DELIVERED);
    CHECK(atomic_load(&c.exits) == WORKERS, "worker_exit ran %d times", atomic_load(&c.exits));
    CHECK(atomic_load(&c.drops_seen_by_exit_min) == TOTAL - DELIVERED,
          "worker_exit ran when only %d of %d on_drop calls had happened",
          atomic_load(&c.drops_seen_by_exit_min), TOTAL - DELIVERED);
    ledger_check_all_once(&c.ids);
    for (size_t i = 0; i < nd; i++)
        CHECK(atomic_load(&c.ids.counts[delivered_ids[i]]) == 1, "delivered twice");
    ledger_destroy(&c.ids);
    gate_destroy(&c.gate);
    check_all_released();
}

/* Free without on_drop and with items outstanding (stack items: nothing to leak). */
static void free_without_on_drop(void)
{
    static struct item items[20];
    pmap_options o = test_opts(work_basic, NULL, 2, 64, true);
    pmap_pool *pool = test_pool(&o);
    for (int i = 0; i < 20; i++) {
        items[i].magic = ITEM_LIVE;
        items[i].id = (uint64_t)i;
        items[i].fail_code = 5; /* no value is allocated */
        items[i].cost_us = 500;
        CHECK_OK(pmap_submit(pool, &items[i], FOREVER));
    }
    CHECK_OK(pmap_free(pool));
    for (int i = 0; i < 20; i++)
        CHECK(atomic_load(&items[i].runs) <= 1, "item ran twice");
}

static atomic_int g_empty_drops;
static void count_drop(void *ctx, const pmap_result *r)
{
    (void)ctx;
    (void)r;
    atomic_fetch_add(&g_empty_drops, 1);
}

/* A pool whose every item was handed back drops nothing (no close: still open). */
static void free_drained(void)
{
    pmap_options o = test_opts(work_basic, NULL, 2, 8, false);
    o.on_drop = count_drop;
    pmap_pool *pool = test_pool(&o);
    for (uint64_t i = 0; i < 8; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), NOWAIT));
    pmap_result r;
    for (int i = 0; i < 8; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        result_release(&r);
    }
    CHECK_OK(pmap_free(pool));
    CHECK(atomic_load(&g_empty_drops) == 0, "on_drop ran %d times for a drained pool",
          atomic_load(&g_empty_drops));
}

int main(void)
{
    watchdog(30);
    run(true);
    run(false);
    free_without_on_drop();
    free_drained();
    check_all_released();
    printf("free_outstanding: ok\n");
    return 0;
}
