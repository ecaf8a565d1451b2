/*
 * unordered: every item comes back exactly once, with its own value; with skewed costs
 * the delivery order differs from index order, and each result's index is the one its
 * item was submitted with. A held item 0 does not hold back the 99 items behind it.
 */
#include "common.h"

enum { WORKERS = 4 };

struct producer {
    pmap_pool *pool;
    struct item **items;
    uint64_t n;
};

static void *produce_all(void *arg)
{
    struct producer *p = arg;
    for (uint64_t i = 0; i < p->n; i++)
        CHECK_OK(pmap_submit(p->pool, p->items[i], FOREVER));
    CHECK_OK(pmap_close(p->pool));
    return NULL;
}

/* Skewed costs: every `slow_every`-th item sleeps slow_us, the rest are instant. */
static void run(uint64_t n, uint32_t capacity, uint64_t slow_every, uint32_t slow_us)
{
    pmap_options o = test_opts(work_basic, NULL, WORKERS, capacity, false);
    pmap_pool *pool = test_pool(&o);
    struct item **items = calloc(n, sizeof *items);
    for (uint64_t i = 0; i < n; i++) {
        items[i] = item_new(i);
        items[i]->cost_us = i % slow_every == 0 ? slow_us : 0;
    }
    struct producer p = {pool, items, n};
    pthread_t t = spawn(produce_all, &p);

    struct ledger ids;
    ledger_init(&ids, n);
    uint64_t inversions = 0, prev = 0, position_of_0 = UINT64_MAX;
    pmap_result r;
    for (uint64_t k = 0; k < n; k++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        struct item *it = r.item;
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        CHECK(r.worker < WORKERS, "worker %u", r.worker);
        CHECK(it != NULL && it->id == r.index,
              "index %" PRIu64 " carries item %" PRIu64 " (one producer: index == id)", r.index,
              it->id);
        CHECK(((struct value *)r.value)->id == it->id, "value of another item");
        CHECK(atomic_load(&it->runs) == 1, "item ran %u times", atomic_load(&it->runs));
        if (k > 0 && r.index < prev)
            inversions++;
        if (r.index == 0)
            position_of_0 = k;
        prev = r.index;
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    join(t);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, n, n, 0, 0);
    CHECK_OK(pmap_free(pool));
    free(items);
    CHECK(inversions > 0, "unordered delivery matched index order exactly (n %" PRIu64 ")", n);
    printf("unordered: n %" PRIu64 ": %" PRIu64 " inversions, item 0 delivered at position %" PRIu64
           "\n",
           n, inversions, position_of_0);
}

/* Deterministic: item 0 is held until the consumer has received every other item. If
 * unordered delivery waited for item 0, the consumer would time out. */
static struct gate g_gate;

static int32_t work_held(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->id == 0)
        gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void held_head(void)
{
    enum { M = 100 };
    gate_init(&g_gate);
    pmap_options o = test_opts(work_held, NULL, 2, M, false);
    pmap_pool *pool = test_pool(&o);
    CHECK_OK(pmap_submit(pool, item_new(0), FOREVER));
    gate_wait_parked(&g_gate, 1); /* item 0 runs (held) before the others are queued */
    for (uint64_t i = 1; i < M; i++)
        CHECK_OK(pmap_submit(pool, item_new(i), FOREVER));
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    struct ledger ids;
    ledger_init(&ids, M);
    for (uint64_t k = 1; k < M; k++) {
        CHECK_OK(pmap_next(pool, &r, 10000 * MS));
        CHECK(r.index != 0, "item 0 came back while held");
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
    gate_open(&g_gate);
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == 0 && r.status == PMAP_ITEM_OK, "index %" PRIu64, r.index);
    ledger_mark(&ids, r.index);
    result_release(&r);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

/* Results come back as they finish, even when the pool has learnt that items are cheap
 * (and may move them in groups): after a warm-up of cheap items, one item of a burst is
 * held; every item of the burst whose work has finished must come back while it is held. */
static atomic_int g_burst_finished;

static int32_t work_burst(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1)
        gate_pass(&g_gate);
    int32_t rc = work_basic(ctx, state, item, result);
    if (it->flags == 2)
        atomic_fetch_add(&g_burst_finished, 1);
    return rc;
}

static void finished_not_held(void)
{
    enum { WARM = 5000, BURST = 64, HELD = 32 };
    gate_init(&g_gate);
    atomic_store(&g_burst_finished, 0);
    pmap_options o = test_opts(work_burst, NULL, 2, 256, false);
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    /* Warm-up: cheap items, one thread, submit without waiting and drain when full. */
    for (uint64_t i = 0; i < WARM; i++) {
        struct item *it = item_new(i);
        pmap_status st;
        while ((st = pmap_submit(pool, it, NOWAIT)) == PMAP_TIMEOUT) {
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            result_release(&r);
        }
        CHECK_OK(st);
    }
    while (test_stats(pool).in_flight > 0) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        result_release(&r);
    }
    /* The burst, in one call; item HELD of it is held. */
    struct item *burst[BURST];
    for (int k = 0; k < BURST; k++) {
        burst[k] = item_new(WARM + (uint64_t)k);
        burst[k]->flags = k == HELD ? 1 : 2;
    }
    size_t acc = 0;
    CHECK_OK(pmap_submit_many(pool, (void *const *)burst, BURST, &acc, FOREVER));
    gate_wait_parked(&g_gate, 1);
    sleep_ms(50); /* the other worker is free meanwhile */
    int finished = atomic_load(&g_burst_finished);
    for (int k = 0; k < finished; k++) {
        pmap_status st = pmap_next(pool, &r, 3000 * MS);
        CHECK(st == PMAP_OK,
              "%d items of the burst had finished, but only %d came back within 3 s (%s) "
              "while item %d is held: finished results wait for a slow neighbour",
              finished, k, pmap_status_str(st), WARM + HELD);
        CHECK(r.index != WARM + HELD, "the held item came back");
        result_release(&r);
    }
    printf("unordered: %d of %d burst items finished while one was held (%s)\n", finished,
           BURST - 1, finished == BURST - 1 ? "all" : "some were not started");
    gate_open(&g_gate);
    CHECK_OK(pmap_close(pool));
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK)
        result_release(&r);
    CHECK_ST(st, PMAP_DONE);
    check_stats_settled(pool, WARM + BURST, WARM + BURST, 0, 0);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

int main(void)
{
    watchdog(30);
    run(2000, 32, 10, 2000);   /* every 10th item takes 2 ms */
    run(200, 64, 1000, 100000); /* only item 0 is slow (100 ms) */
    run(5000, 0, 7, 200);
    held_head();
    finished_not_held();
    check_all_released();
    printf("unordered: ok\n");
    return 0;
}
