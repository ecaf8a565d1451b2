/*
 * fail_fast: the first failed item cancels the pool. With one worker the outcome is exact:
 * items before the failure are OK, the failure is FAILED, every later one is CANCELLED and
 * never ran; pmap_is_cancelled is true, submit → PMAP_CANCELLED, next reaches DONE without
 * a close. With several workers, items already running may finish but every item comes
 * back exactly once and a cancelled one never ran. Without fail_fast everything runs.
 */
#include "common.h"

static struct gate g_gate;
static pmap_pool *_Atomic g_pool;
static atomic_int g_started_cancelled; /* work calls that began on a cancelled pool */

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1)
        gate_pass(&g_gate);
    if (pmap_is_cancelled(atomic_load(&g_pool)))
        atomic_fetch_add(&g_started_cancelled, 1);
    return work_basic(ctx, state, item, result);
}

struct outcome_counts {
    uint64_t ok, failed, cancelled, ran_after_failure;
};

static struct outcome_counts drain(pmap_pool *pool, struct item **items, uint64_t n,
                                   uint64_t fail_at, bool ordered)
{
    struct outcome_counts c = {0, 0, 0, 0};
    struct ledger ids;
    ledger_init(&ids, n);
    pmap_result r;
    pmap_status st;
    uint64_t expect = 0;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered)
            CHECK(r.index == expect++, "index %" PRIu64, r.index);
        CHECK(r.index < n && r.item == items[r.index], "result carries the wrong item");
        ledger_mark(&ids, r.index);
        unsigned runs = atomic_load(&items[r.index]->runs);
        switch (r.status) {
        case PMAP_ITEM_OK:
            CHECK(runs == 1, "OK item ran %u times", runs);
            c.ok++;
            if (r.index > fail_at)
                c.ran_after_failure++;
            break;
        case PMAP_ITEM_FAILED:
            CHECK(runs == 1, "failed item ran %u times", runs);
            CHECK(r.error == items[r.index]->fail_code, "error %d", r.error);
            c.failed++;
            if (r.index > fail_at)
                c.ran_after_failure++;
            break;
        case PMAP_ITEM_CANCELLED:
            CHECK(runs == 0, "cancelled item %" PRIu64 " ran", r.index);
            CHECK(r.worker == PMAP_NO_WORKER, "cancelled item has worker %u", r.worker);
            CHECK(r.index > fail_at, "item %" PRIu64 " before the failure was cancelled",
                  r.index);
            c.cancelled++;
            break;
        default:
            CHECK(false, "unexpected status %d", r.status);
        }
        result_release(&r);
    }
    CHECK_ST(st, PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    return c;
}

/* Park every worker, queue the rest, then let them go: the failure finds a full queue. */
static pmap_pool *start(uint32_t workers, bool fail_fast, bool ordered, struct item **items,
                        uint64_t n, uint64_t fail_at)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, workers, (uint32_t)n, ordered);
    o.fail_fast = fail_fast;
    pmap_pool *pool = test_pool(&o);
    atomic_store(&g_pool, pool);
    atomic_store(&g_started_cancelled, 0);
    for (uint64_t i = 0; i < n; i++) {
        items[i] = item_new(i);
        items[i]->flags = i < workers;
        items[i]->fail_code = i == fail_at ? 42 : 0;
    }
    CHECK(fail_at >= workers, "the failing item must be queued, not parked");
    for (uint64_t i = 0; i < workers; i++) {
        CHECK_OK(pmap_submit(pool, items[i], FOREVER));
        gate_wait_parked(&g_gate, (int)i + 1); /* one at a time: each worker takes one */
    }
    for (uint64_t i = workers; i < n; i++)
        CHECK_OK(pmap_submit(pool, items[i], FOREVER));
    gate_open(&g_gate);
    return pool;
}

static void exact_one_worker(bool ordered)
{
    enum { N = 50, FAIL_AT = 5 };
    struct item *items[N];
    pmap_pool *pool = start(1, true, ordered, items, N, FAIL_AT);
    struct outcome_counts c = drain(pool, items, N, FAIL_AT, ordered);
    CHECK(c.ok == FAIL_AT && c.failed == 1 && c.cancelled == N - FAIL_AT - 1,
          "ok %" PRIu64 " failed %" PRIu64 " cancelled %" PRIu64, c.ok, c.failed, c.cancelled);
    CHECK(c.ran_after_failure == 0, "%" PRIu64 " items ran after the failure",
          c.ran_after_failure);
    CHECK(atomic_load(&g_started_cancelled) == 0, "work started on a cancelled pool");
    CHECK(pmap_is_cancelled(pool), "fail_fast did not cancel the pool");
    struct item *late = item_new(N);
    CHECK_ST(pmap_submit(pool, late, NOWAIT), PMAP_CANCELLED);
    CHECK_ST(pmap_submit(pool, late, FOREVER), PMAP_CANCELLED);
    item_free(late);
    check_stats_settled(pool, N, FAIL_AT, 1, N - FAIL_AT - 1);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

static void several_workers(bool ordered)
{
    enum { N = 400, FAIL_AT = 5, W = 4 };
    struct item *items[N];
    pmap_pool *pool = start(W, true, ordered, items, N, FAIL_AT);
    struct outcome_counts c = drain(pool, items, N, FAIL_AT, ordered);
    CHECK(c.failed == 1, "failed %" PRIu64, c.failed);
    CHECK(c.ok >= FAIL_AT, "ok %" PRIu64, c.ok);
    CHECK(c.cancelled > 0, "nothing was cancelled");
    /* No new item starts after the cancel: a worker that took a task just before it may
     * still start that one, so at most one per other worker sees a cancelled pool. */
    CHECK(atomic_load(&g_started_cancelled) <= W - 1,
          "%d work calls started after fail_fast cancelled the pool",
          atomic_load(&g_started_cancelled));
    CHECK(pmap_is_cancelled(pool), "fail_fast did not cancel the pool");
    CHECK_ST(pmap_submit(pool, NULL, NOWAIT), PMAP_CANCELLED);
    check_stats_settled(pool, N, c.ok, 1, c.cancelled);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

static void without_fail_fast(bool ordered)
{
    enum { N = 100, FAIL_AT = 5 };
    struct item *items[N];
    pmap_pool *pool = start(3, false, ordered, items, N, FAIL_AT);
    /* Close so DONE can come: the pool is not cancelled this time. */
    CHECK_OK(pmap_close(pool));
    struct outcome_counts c = drain(pool, items, N, FAIL_AT, ordered);
    CHECK(c.failed == 1 && c.ok == N - 1 && c.cancelled == 0,
          "ok %" PRIu64 " failed %" PRIu64 " cancelled %" PRIu64, c.ok, c.failed, c.cancelled);
    CHECK(!pmap_is_cancelled(pool), "cancelled without fail_fast");
    check_stats_settled(pool, N, N - 1, 1, 0);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

int main(void)
{
    watchdog(30);
    exact_one_worker(true);
    exact_one_worker(false);
    several_workers(true);
    several_workers(false);
    without_fail_fast(true);
    without_fail_fast(false);
    check_all_released();
    printf("fail_fast: ok\n");
    return 0;
}
