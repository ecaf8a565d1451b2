/*
 * batch: pmap_submit_many and pmap_next_many.
 *  - submit_many accepts the prefix that fits and reports PMAP_TIMEOUT with *accepted
 *    exact when capacity < n; the rest stays with the caller; items get consecutive indices
 *    in array order; a blocking submit_many with a consumer running accepts all of n;
 *  - n == 0 is PMAP_OK with *accepted 0; after close / cancel it is CLOSED / CANCELLED;
 *  - next_many waits for the first result, then takes whatever else is ready, up to max,
 *    in order in ordered mode; it reports *got; DONE with *got 0 at the end.
 */
#include "common.h"

enum { CAP = 8, N = 20 };

static struct gate g_gate;

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void prefix_and_next_many(void)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, 1, CAP, true);
    pmap_pool *pool = test_pool(&o);
    struct item *items[N];
    for (uint64_t i = 0; i < N; i++)
        items[i] = item_new(i);

    size_t acc = 999;
    CHECK_OK(pmap_submit_many(pool, NULL, 0, &acc, NOWAIT));
    CHECK(acc == 0, "n == 0 accepted %zu", acc);
    acc = 999;
    CHECK_ST(pmap_submit_many(pool, (void *const *)items, N, &acc, NOWAIT), PMAP_TIMEOUT);
    CHECK(acc == CAP, "accepted %zu of %d with capacity %d", acc, N, CAP);
    pmap_stats s = test_stats(pool);
    CHECK(s.submitted == CAP && s.in_flight == CAP, "submitted %" PRIu64 " in_flight %" PRIu64,
          s.submitted, s.in_flight);
    /* Full: a timed submit_many accepts nothing and waits about as long as asked. */
    uint64_t t0 = now_ns();
    acc = 999;
    CHECK_ST(pmap_submit_many(pool, (void *const *)items + CAP, N - CAP, &acc, 20 * MS),
             PMAP_TIMEOUT);
    CHECK(acc == 0, "accepted %zu into a full pool", acc);
    CHECK(ms_since(t0) >= 15, "a 20 ms submit_many gave up after %.1f ms", ms_since(t0));
    /* Ordered and the head is held: nothing to take. */
    pmap_result r[32];
    size_t got = 999;
    CHECK_ST(pmap_next_many(pool, r, 4, &got, NOWAIT), PMAP_TIMEOUT);
    CHECK(got == 0, "got %zu on timeout", got);

    gate_open(&g_gate);
    while (test_stats(pool).succeeded < CAP)
        sleep_ms(1);
    /* All 8 are ready: max bounds the batch, and everything ready is taken. */
    got = 0;
    CHECK_OK(pmap_next_many(pool, r, 3, &got, NOWAIT));
    CHECK(got == 3, "next_many(max 3) with 8 ready took %zu", got);
    for (size_t k = 0; k < got; k++) {
        CHECK(r[k].index == k && r[k].item == items[k], "position %zu: index %" PRIu64, k,
              r[k].index);
        result_release(&r[k]);
    }
    got = 0;
    CHECK_OK(pmap_next_many(pool, r, 32, &got, FOREVER));
    CHECK(got == CAP - 3, "next_many(max 32) with %d ready took %zu", CAP - 3, got);
    for (size_t k = 0; k < got; k++) {
        CHECK(r[k].index == 3 + k && r[k].item == items[3 + k], "position %zu: index %" PRIu64,
              k, r[k].index);
        CHECK(r[k].status == PMAP_ITEM_OK, "status %d", r[k].status);
        result_release(&r[k]);
    }
    got = 999;
    CHECK_ST(pmap_next_many(pool, r, 32, &got, NOWAIT), PMAP_TIMEOUT);
    CHECK(got == 0, "got %zu", got);

    /* The rest, items[8..20), was never taken: it is still ours. Submit it now (fits in
     * two rounds) and check the indices continue in array order. */
    acc = 0;
    CHECK_OK(pmap_submit_many(pool, (void *const *)items + CAP, CAP, &acc, NOWAIT));
    CHECK(acc == CAP, "accepted %zu", acc);
    size_t total = 0;
    while (total < CAP) {
        got = 0;
        CHECK_OK(pmap_next_many(pool, r, 32, &got, FOREVER));
        CHECK(got >= 1, "OK with got 0");
        for (size_t k = 0; k < got; k++) {
            CHECK(r[k].index == CAP + total + k, "index %" PRIu64 ", expected %zu", r[k].index,
                  CAP + total + k);
            CHECK(r[k].item == items[r[k].index], "wrong item");
            result_release(&r[k]);
        }
        total += got;
    }
    CHECK_OK(pmap_submit_many(pool, (void *const *)items + 2 * CAP, N - 2 * CAP, &acc, NOWAIT));
    CHECK(acc == N - 2 * CAP, "accepted %zu", acc);
    CHECK_OK(pmap_close(pool));
    acc = 999;
    struct item *late = item_new(N);
    CHECK_ST(pmap_submit_many(pool, (void *const *)&late, 1, &acc, FOREVER), PMAP_CLOSED);
    CHECK(acc == 0, "accepted %zu after close", acc);
    item_free(late);
    total = 0;
    pmap_status st;
    while ((st = pmap_next_many(pool, r, 3, &got, FOREVER)) == PMAP_OK) {
        CHECK(got >= 1 && got <= 3, "got %zu with max 3", got);
        for (size_t k = 0; k < got; k++) {
            CHECK(r[k].index == 2 * CAP + total + k, "index %" PRIu64, r[k].index);
            result_release(&r[k]);
        }
        total += got;
    }
    CHECK_ST(st, PMAP_DONE);
    CHECK(got == 0, "got %zu on DONE", got);
    CHECK(total == N - 2 * CAP, "took %zu", total);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

/* A blocking submit_many larger than the window, with a consumer: accepts everything. */
struct consumer {
    pmap_pool *pool;
    uint64_t got;
    bool ordered;
};

static void *consume(void *arg)
{
    struct consumer *c = arg;
    pmap_result r[7];
    size_t got;
    pmap_status st;
    while ((st = pmap_next_many(c->pool, r, 7, &got, FOREVER)) == PMAP_OK) {
        for (size_t k = 0; k < got; k++) {
            if (c->ordered)
                CHECK(r[k].index == c->got, "index %" PRIu64 ", expected %" PRIu64, r[k].index,
                      c->got);
            CHECK(((struct item *)r[k].item)->id == r[k].index, "item/index mismatch");
            result_release(&r[k]);
            c->got++;
        }
    }
    CHECK_ST(st, PMAP_DONE);
    return NULL;
}

static void blocking_large(bool ordered)
{
    enum { BIG = 5000 };
    pmap_options o = test_opts(work_basic, NULL, 2, 16, ordered);
    pmap_pool *pool = test_pool(&o);
    struct consumer c = {pool, 0, ordered};
    pthread_t t = spawn(consume, &c);
    struct item **items = calloc(BIG, sizeof *items);
    for (uint64_t i = 0; i < BIG; i++)
        items[i] = item_new(i);
    size_t acc = 0;
    CHECK_OK(pmap_submit_many(pool, (void *const *)items, BIG / 2, &acc, FOREVER));
    CHECK(acc == BIG / 2, "accepted %zu", acc);
    /* A timed one that is long enough also takes everything. */
    CHECK_OK(pmap_submit_many(pool, (void *const *)items + BIG / 2, BIG - BIG / 2, &acc,
                              10000 * MS));
    CHECK(acc == BIG - BIG / 2, "accepted %zu", acc);
    CHECK_OK(pmap_close(pool));
    join(t);
    CHECK(c.got == BIG, "consumer got %" PRIu64, c.got);
    check_stats_settled(pool, BIG, BIG, 0, 0);
    CHECK_OK(pmap_free(pool));
    free(items);
}

/* submit_many after a cancel: refused with nothing accepted. */
static void after_cancel(void)
{
    pmap_options o = test_opts(work_basic, NULL, 1, 4, true);
    pmap_pool *pool = test_pool(&o);
    CHECK_OK(pmap_cancel(pool));
    struct item *it = item_new(0);
    size_t acc = 999;
    CHECK_ST(pmap_submit_many(pool, (void *const *)&it, 1, &acc, FOREVER), PMAP_CANCELLED);
    CHECK(acc == 0, "accepted %zu after cancel", acc);
    item_free(it);
    pmap_result r;
    size_t got = 9;
    CHECK_ST(pmap_next_many(pool, &r, 1, &got, FOREVER), PMAP_DONE);
    CHECK(got == 0, "got %zu", got);
    CHECK_OK(pmap_free(pool));
}

int main(void)
{
    watchdog(30);
    prefix_and_next_many();
    blocking_large(true);
    blocking_large(false);
    after_cancel();
    check_all_released();
    printf("batch: ok\n");
    return 0;
}
