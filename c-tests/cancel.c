/*
 * cancel: with every worker parked on a gate and K items queued behind them, pmap_cancel
 * makes exactly those K come back PMAP_ITEM_CANCELLED (worker PMAP_NO_WORKER, value NULL,
 * never passed to work) while the parked ones finish and come back normally. After the
 * cancel: submit → PMAP_CANCELLED, pmap_is_cancelled, cancel idempotent, next reaches
 * PMAP_DONE without a close. Also: a producer blocked on a full pool and a consumer blocked
 * on an empty one are released by the cancel.
 */
#include "common.h"

enum { WORKERS = 3, K = 40 };

static struct gate g_gate;

/* Items with flags == 1 park on the gate; the rest run normally. */
static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1)
        gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void run(bool ordered)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, WORKERS, 128, ordered);
    pmap_pool *pool = test_pool(&o);
    struct item *items[WORKERS + K];
    /* Park every worker, one at a time (so each is free to take the next). */
    for (int i = 0; i < WORKERS; i++) {
        items[i] = item_new((uint64_t)i);
        items[i]->flags = 1;
        CHECK_OK(pmap_submit(pool, items[i], FOREVER));
        gate_wait_parked(&g_gate, i + 1);
    }
    /* Queue K more; no worker is free to take them. */
    for (int i = WORKERS; i < WORKERS + K; i++) {
        items[i] = item_new((uint64_t)i);
        CHECK_OK(pmap_submit(pool, items[i], FOREVER));
    }
    CHECK(!pmap_is_cancelled(pool), "cancelled before pmap_cancel");
    CHECK_OK(pmap_cancel(pool));
    CHECK(pmap_is_cancelled(pool), "pmap_is_cancelled false after pmap_cancel");
    CHECK_OK(pmap_cancel(pool)); /* idempotent */
    CHECK(pmap_is_cancelled(pool), "a second cancel un-cancelled the pool");

    /* Submitting after the cancel is refused; the item stays ours. */
    struct item *late = item_new(999);
    CHECK_ST(pmap_submit(pool, late, FOREVER), PMAP_CANCELLED);
    CHECK_ST(pmap_submit(pool, late, NOWAIT), PMAP_CANCELLED);
    size_t accepted = 12345;
    void *batch[2] = {late, late};
    CHECK_ST(pmap_submit_many(pool, batch, 2, &accepted, FOREVER), PMAP_CANCELLED);
    CHECK(accepted == 0, "submit_many after cancel accepted %zu", accepted);
    item_free(late);

    struct ledger ids;
    ledger_init(&ids, WORKERS + K);
    pmap_result r;
    int cancelled = 0, ok = 0;
    if (!ordered) {
        /* The cancelled items do not wait for the busy workers: all K are ready now. */
        for (int i = 0; i < K; i++) {
            CHECK_OK(pmap_next(pool, &r, 5000 * MS));
            CHECK(r.status == PMAP_ITEM_CANCELLED,
                  "while workers are parked, got index %" PRIu64 " status %d", r.index,
                  r.status);
            CHECK(r.index >= WORKERS, "a parked item came back before the gate opened");
            CHECK(r.worker == PMAP_NO_WORKER, "cancelled item has worker %u", r.worker);
            CHECK(r.value == NULL && r.error == 0, "cancelled item has value/error");
            CHECK(r.item == items[r.index], "cancelled result carries the wrong item");
            CHECK(atomic_load(&items[r.index]->runs) == 0, "cancelled item was run");
            ledger_mark(&ids, r.index);
            result_release(&r);
            cancelled++;
        }
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT); /* parked ones still running */
    } else {
        /* Ordered: index 0 is still running, so nothing can come out yet. */
        CHECK_ST(pmap_next(pool, &r, 20 * MS), PMAP_TIMEOUT);
    }
    gate_open(&g_gate);

    uint64_t expect_index = 0;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered) {
            CHECK(r.index == expect_index, "ordered: index %" PRIu64 ", expected %" PRIu64,
                  r.index, expect_index);
            expect_index++;
        }
        CHECK(r.index < WORKERS + K, "unknown index %" PRIu64, r.index);
        CHECK(r.item == items[r.index], "result %" PRIu64 " carries the wrong item", r.index);
        if (r.index < WORKERS) {
            /* Running items finish and come back normally. */
            CHECK(r.status == PMAP_ITEM_OK, "parked item %" PRIu64 ": status %d", r.index,
                  r.status);
            CHECK(r.worker < WORKERS, "parked item ran on worker %u", r.worker);
            CHECK(atomic_load(&items[r.index]->runs) == 1, "parked item ran %u times",
                  atomic_load(&items[r.index]->runs));
            ok++;
        } else {
            CHECK(r.status == PMAP_ITEM_CANCELLED, "queued item %" PRIu64 ": status %d",
                  r.index, r.status);
            CHECK(r.worker == PMAP_NO_WORKER, "cancelled item has worker %u", r.worker);
            CHECK(r.value == NULL && r.error == 0, "cancelled item has value/error");
            CHECK(atomic_load(&items[r.index]->runs) == 0, "cancelled item %" PRIu64 " was run",
                  r.index);
            cancelled++;
        }
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK_ST(st, PMAP_DONE); /* no pmap_close: the cancel ends the stream */
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK(cancelled == K, "%d cancelled, expected exactly %d", cancelled, K);
    CHECK(ok == WORKERS, "%d ran, expected %d", ok, WORKERS);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, WORKERS + K, WORKERS, 0, K);
    CHECK_OK(pmap_close(pool)); /* still allowed after cancel */
    CHECK_OK(pmap_cancel(pool));
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

/* Cancel an idle pool: next returns DONE at once, without a close. */
static void cancel_idle(void)
{
    pmap_options o = test_opts(work_basic, NULL, 2, 8, true);
    pmap_pool *pool = test_pool(&o);
    CHECK_OK(pmap_cancel(pool));
    pmap_result r;
    CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    check_stats_settled(pool, 0, 0, 0, 0);
    CHECK_OK(pmap_free(pool));
}

struct blocked_call {
    pmap_pool *pool;
    pmap_status st;
    uint64_t returned_ns;
};

static void *blocked_submit(void *arg)
{
    struct blocked_call *c = arg;
    struct item *it = item_new(1000);
    c->st = pmap_submit(c->pool, it, FOREVER);
    c->returned_ns = now_ns();
    if (c->st != PMAP_OK)
        item_free(it);
    return NULL;
}

static void *blocked_next(void *arg)
{
    struct blocked_call *c = arg;
    pmap_result r;
    c->st = pmap_next(c->pool, &r, FOREVER);
    c->returned_ns = now_ns();
    CHECK(c->st != PMAP_OK, "next returned a result on a pool with nothing submitted");
    return NULL;
}

/* A producer waiting for room and a consumer waiting for a result both wake on cancel. */
static void cancel_wakes_waiters(void)
{
    gate_init(&g_gate);
    /* Full pool: capacity 1, its only item parked. */
    pmap_options o = test_opts(work_gated, NULL, 1, 1, true);
    pmap_pool *full = test_pool(&o);
    struct item *blocker = item_new(0);
    blocker->flags = 1;
    CHECK_OK(pmap_submit(full, blocker, FOREVER));
    gate_wait_parked(&g_gate, 1);
    struct blocked_call prod = {full, -1, 0};
    pthread_t tp = spawn(blocked_submit, &prod);

    pmap_options o2 = test_opts(work_basic, NULL, 1, 4, true);
    pmap_pool *empty = test_pool(&o2);
    struct blocked_call cons = {empty, -1, 0};
    pthread_t tc = spawn(blocked_next, &cons);

    sleep_ms(50); /* let both block */
    uint64_t t0 = now_ns();
    CHECK_OK(pmap_cancel(full));
    CHECK_OK(pmap_cancel(empty));
    join(tp);
    join(tc);
    CHECK_ST(prod.st, PMAP_CANCELLED);
    CHECK_ST(cons.st, PMAP_DONE);
    CHECK((prod.returned_ns - t0) < 2000 * 1000000ull, "blocked submit took %.1f ms to wake",
          (double)(prod.returned_ns - t0) / 1e6);
    CHECK((cons.returned_ns - t0) < 2000 * 1000000ull, "blocked next took %.1f ms to wake",
          (double)(cons.returned_ns - t0) / 1e6);

    gate_open(&g_gate);
    pmap_result r;
    CHECK_OK(pmap_next(full, &r, FOREVER));
    CHECK(r.index == 0 && r.status == PMAP_ITEM_OK, "the running item finishes normally");
    result_release(&r);
    CHECK_ST(pmap_next(full, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(full));
    CHECK_OK(pmap_free(empty));
    gate_destroy(&g_gate);
}

int main(void)
{
    watchdog(30);
    run(false);
    run(true);
    cancel_idle();
    cancel_wakes_waiters();
    check_all_released();
    printf("cancel: ok\n");
    return 0;
}
