/*
 * timeouts: waits last about as long as asked, and end as soon as something happens.
 *  - pmap_next with a 20 ms timeout on an idle pool: PMAP_TIMEOUT after >= 15 ms (and not
 *    absurdly later); timeout 0 and 1 ns return at once;
 *  - pmap_submit with a timeout on a full pool: PMAP_TIMEOUT after about that long; it
 *    succeeds promptly when a consumer makes room meanwhile;
 *  - a pmap_next waiting (forever or with a long timeout) on another thread wakes promptly
 *    on pmap_close / pmap_cancel with PMAP_DONE, all waiters at once; a blocked submit
 *    wakes with PMAP_CLOSED / PMAP_CANCELLED. "Promptly" is checked loosely (the machine
 *    may be busy) but would catch a poll with a period in the hundreds of ms.
 */
#include "common.h"

/* Loose bounds: a loaded 2-core CI machine must pass; a polling loop must not. */
#define LATE_MS 2000.0
#define WAKE_MAX_MS 1000.0
#define WAKE_BEST_MS 50.0

static struct gate g_gate;

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void next_timeout_on_idle_pool(void)
{
    pmap_options o = test_opts(work_basic, NULL, 1, 4, true);
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ns();
        CHECK_ST(pmap_next(pool, &r, 20 * MS), PMAP_TIMEOUT);
        double ms = ms_since(t0);
        CHECK(ms >= 15.0, "a 20 ms pmap_next timed out after %.2f ms", ms);
        CHECK(ms < LATE_MS, "a 20 ms pmap_next took %.2f ms", ms);
        size_t got = 9;
        t0 = now_ns();
        CHECK_ST(pmap_next_many(pool, &r, 1, &got, 20 * MS), PMAP_TIMEOUT);
        ms = ms_since(t0);
        CHECK(ms >= 15.0 && ms < LATE_MS, "a 20 ms pmap_next_many took %.2f ms", ms);
        CHECK(got == 0, "got %zu", got);
    }
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ns();
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
        CHECK_ST(pmap_next(pool, &r, 1), PMAP_TIMEOUT);
        CHECK(ms_since(t0) < 100.0, "timeouts 0 and 1 ns took %.2f ms", ms_since(t0));
    }
    CHECK_OK(pmap_free(pool));
}

static void submit_timeout_when_full(void)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, 1, 2, true);
    pmap_pool *pool = test_pool(&o);
    struct item *a = item_new(0), *b = item_new(1), *c = item_new(2);
    CHECK_OK(pmap_submit(pool, a, NOWAIT));
    CHECK_OK(pmap_submit(pool, b, NOWAIT));
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = now_ns();
        CHECK_ST(pmap_submit(pool, c, 30 * MS), PMAP_TIMEOUT);
        double ms = ms_since(t0);
        CHECK(ms >= 25.0 && ms < LATE_MS, "a 30 ms submit on a full pool took %.2f ms", ms);
        t0 = now_ns();
        CHECK_ST(pmap_submit(pool, c, NOWAIT), PMAP_TIMEOUT);
        CHECK(ms_since(t0) < 100.0, "a timeout-0 submit took %.2f ms", ms_since(t0));
    }
    gate_open(&g_gate);
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, FOREVER)); /* makes room */
    result_release(&r);
    CHECK_OK(pmap_submit(pool, c, 30 * MS));
    CHECK_OK(pmap_close(pool));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

struct waiter {
    pmap_pool *pool;
    int64_t timeout;
    bool submit; /* submit (into a full pool) rather than next */
    pmap_status st;
    uint64_t started_ns, returned_ns;
    atomic_bool waiting;
};

static void *wait_call(void *arg)
{
    struct waiter *w = arg;
    pmap_result r;
    w->started_ns = now_ns();
    atomic_store(&w->waiting, true);
    if (w->submit) {
        struct item *it = item_new(777);
        w->st = pmap_submit(w->pool, it, w->timeout);
        if (w->st != PMAP_OK)
            item_free(it);
    } else {
        w->st = pmap_next(w->pool, &r, w->timeout);
        if (w->st == PMAP_OK)
            result_release(&r);
    }
    w->returned_ns = now_ns();
    return NULL;
}

/* Start `n` waiters, let them block, run `wake` on the pool, and measure. Returns the
 * slowest wake-up latency in ms. */
static double wake_latency(pmap_pool *pool, int n, bool submit, int64_t timeout,
                           pmap_status (*wake)(pmap_pool *), pmap_status expect)
{
    struct waiter w[4];
    pthread_t t[4];
    for (int i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].pool = pool;
        w[i].timeout = timeout;
        w[i].submit = submit;
        w[i].st = -1;
        t[i] = spawn(wait_call, &w[i]);
    }
    for (int i = 0; i < n; i++)
        while (!atomic_load(&w[i].waiting))
            sleep_ms(1);
    sleep_ms(30); /* they are inside the call, waiting */
    for (int i = 0; i < n; i++)
        CHECK(w[i].returned_ns == 0, "waiter %d returned before the wake-up (%s)", i,
              pmap_status_str(w[i].st));
    uint64_t t0 = now_ns();
    CHECK_OK(wake(pool));
    double worst = 0;
    for (int i = 0; i < n; i++) {
        join(t[i]);
        CHECK_ST(w[i].st, expect);
        double ms = (double)(w[i].returned_ns - t0) / 1e6;
        if (ms > worst)
            worst = ms;
    }
    return worst;
}

static void next_wakes(pmap_status (*wake)(pmap_pool *), const char *what)
{
    double best = 1e9, worst = 0;
    for (int round = 0; round < 5; round++) {
        pmap_options o = test_opts(work_basic, NULL, 1, 4, round % 2 == 0);
        pmap_pool *pool = test_pool(&o);
        int64_t timeout = round < 3 ? FOREVER : 10000 * MS;
        double ms = wake_latency(pool, round == 0 ? 3 : 1, false, timeout, wake, PMAP_DONE);
        if (ms < best)
            best = ms;
        if (ms > worst)
            worst = ms;
        CHECK_OK(pmap_free(pool));
    }
    printf("timeouts: waiting next wakes on %s in %.2f ms (worst %.2f ms)\n", what, best, worst);
    CHECK(worst < WAKE_MAX_MS, "a waiting pmap_next took %.1f ms to see %s", worst, what);
    CHECK(best < WAKE_BEST_MS, "a waiting pmap_next never saw %s within %.0f ms (best %.1f)",
          what, WAKE_BEST_MS, best);
}

static void submit_wakes(pmap_status (*wake)(pmap_pool *), pmap_status expect,
                         const char *what)
{
    double best = 1e9, worst = 0;
    for (int round = 0; round < 3; round++) {
        gate_init(&g_gate);
        pmap_options o = test_opts(work_gated, NULL, 1, 1, true);
        pmap_pool *pool = test_pool(&o);
        struct item *blocker = item_new(0);
        CHECK_OK(pmap_submit(pool, blocker, NOWAIT));
        double ms = wake_latency(pool, round == 0 ? 2 : 1, true,
                                 round == 2 ? 10000 * MS : FOREVER, wake, expect);
        if (ms < best)
            best = ms;
        if (ms > worst)
            worst = ms;
        gate_open(&g_gate);
        pmap_result r;
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        result_release(&r);
        CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
        CHECK_OK(pmap_free(pool));
        gate_destroy(&g_gate);
    }
    printf("timeouts: blocked submit wakes on %s in %.2f ms (worst %.2f ms)\n", what, best,
           worst);
    CHECK(worst < WAKE_MAX_MS, "a blocked submit took %.1f ms to see %s", worst, what);
    CHECK(best < WAKE_BEST_MS, "a blocked submit never saw %s within %.0f ms", what,
          WAKE_BEST_MS);
}

/* A blocked submit completes as soon as a consumer makes room. */
static pmap_status take_one(pmap_pool *pool)
{
    pmap_result r;
    gate_open(&g_gate);
    pmap_status st = pmap_next(pool, &r, FOREVER);
    if (st == PMAP_OK)
        result_release(&r);
    return st;
}

static void submit_wakes_on_room(void)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, 1, 1, true);
    pmap_pool *pool = test_pool(&o);
    CHECK_OK(pmap_submit(pool, item_new(0), NOWAIT));
    double ms = wake_latency(pool, 1, true, 10000 * MS, take_one, PMAP_OK);
    CHECK(ms < WAKE_MAX_MS, "the blocked submit took %.1f ms after room was made", ms);
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    result_release(&r);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

int main(void)
{
    watchdog(30);
    next_timeout_on_idle_pool();
    submit_timeout_when_full();
    next_wakes(pmap_close, "pmap_close");
    next_wakes(pmap_cancel, "pmap_cancel");
    submit_wakes(pmap_close, PMAP_CLOSED, "pmap_close");
    submit_wakes(pmap_cancel, PMAP_CANCELLED, "pmap_cancel");
    submit_wakes_on_room();
    check_all_released();
    printf("timeouts: ok\n");
    return 0;
}
