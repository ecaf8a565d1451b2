/*
 * errors: a work function that returns non-zero makes its item PMAP_ITEM_FAILED with that
 * exact code, value NULL (even though work wrote *result), a valid worker id and the item
 * handed back; successes are unaffected; stats count succeeded + failed == submitted.
 * Without fail_fast a failure changes nothing else: submitting goes on.
 */
#include "common.h"

enum { N = 1000, WORKERS = 3 };

/* The code item i fails with, or 0 for success. Covers negatives and the extremes. */
static int32_t code_for(uint64_t i)
{
    if (i == 1)
        return INT32_MIN;
    if (i == 2)
        return INT32_MAX;
    if (i == 3)
        return -1;
    if (i % 5 == 0)
        return (int32_t)(i % 1000) + 1;
    if (i % 7 == 0)
        return -(int32_t)i;
    return 0;
}

static void run(bool ordered)
{
    pmap_options o = test_opts(work_basic, NULL, WORKERS, 16, ordered);
    pmap_pool *pool = test_pool(&o);
    struct ledger ids;
    ledger_init(&ids, N);
    uint64_t want_failed = 0, got_failed = 0, got_ok = 0, next_index = 0;
    uint64_t submitted = 0;
    pmap_result r;

    /* One thread: submit with timeout 0, drain when full. */
    for (;;) {
        if (submitted < N) {
            struct item *it = item_new(submitted);
            it->fail_code = code_for(submitted);
            it->cost_us = submitted % 11 == 0 ? 300 : 0;
            pmap_status st = pmap_submit(pool, it, NOWAIT);
            if (st == PMAP_OK) {
                want_failed += it->fail_code != 0;
                submitted++;
                if (submitted == N)
                    CHECK_OK(pmap_close(pool));
                continue;
            }
            CHECK(st == PMAP_TIMEOUT, "submit: %s", pmap_status_str(st));
            item_free(it);
        }
        pmap_status st = pmap_next(pool, &r, FOREVER);
        if (st == PMAP_DONE)
            break;
        CHECK_OK(st);
        struct item *it = r.item;
        CHECK(it != NULL && it->id == r.index, "result %" PRIu64 " carries item %" PRIu64,
              r.index, it ? it->id : UINT64_MAX);
        if (ordered) {
            CHECK(r.index == next_index, "index %" PRIu64 ", expected %" PRIu64, r.index,
                  next_index);
            next_index++;
        }
        CHECK(r.worker < WORKERS, "worker %u (of %d) for item %" PRIu64, r.worker, WORKERS,
              r.index);
        CHECK(atomic_load(&it->runs) == 1, "item ran %u times", atomic_load(&it->runs));
        int32_t code = code_for(r.index);
        if (code != 0) {
            CHECK(r.status == PMAP_ITEM_FAILED, "item %" PRIu64 ": status %d, expected FAILED",
                  r.index, r.status);
            CHECK(r.error == code, "item %" PRIu64 ": error %d, expected %d", r.index, r.error,
                  code);
            CHECK(r.value == NULL, "failed item %" PRIu64 " has value %p", r.index, r.value);
            got_failed++;
        } else {
            CHECK(r.status == PMAP_ITEM_OK, "item %" PRIu64 ": status %d", r.index, r.status);
            CHECK(r.error == 0, "item %" PRIu64 ": OK with error %d", r.index, r.error);
            CHECK(r.value != NULL && ((struct value *)r.value)->id == r.index, "bad value");
            got_ok++;
        }
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK(submitted == N, "submitted %" PRIu64, submitted);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    CHECK(got_failed == want_failed, "%" PRIu64 " failed results, expected %" PRIu64, got_failed,
          want_failed);
    CHECK(!pmap_is_cancelled(pool), "failures without fail_fast cancelled the pool");
    check_stats_settled(pool, N, N - want_failed, want_failed, 0);
    CHECK_OK(pmap_free(pool));
    printf("errors: %s: %" PRIu64 " ok, %" PRIu64 " failed\n", ordered ? "ordered" : "unordered",
           got_ok, got_failed);
}

/* All items fail: the pool still finishes normally. */
static void all_fail(void)
{
    pmap_options o = test_opts(work_basic, NULL, 2, 8, true);
    pmap_pool *pool = test_pool(&o);
    for (uint64_t i = 0; i < 8; i++) {
        struct item *it = item_new(i);
        it->fail_code = 77;
        CHECK_OK(pmap_submit(pool, it, FOREVER));
    }
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    for (uint64_t i = 0; i < 8; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_FAILED && r.error == 77 && r.value == NULL,
              "index %" PRIu64 " status %d error %d", r.index, r.status, r.error);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    check_stats_settled(pool, 8, 0, 8, 0);
    CHECK_OK(pmap_free(pool));
}

int main(void)
{
    watchdog(30);
    run(true);
    run(false);
    all_fail();
    check_all_released();
    printf("errors: ok\n");
    return 0;
}
