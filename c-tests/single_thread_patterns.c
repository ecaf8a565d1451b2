/*
 * single_thread_patterns: the two ways one thread can both feed and consume a pool
 * (README, API.md "A single thread that both submits and consumes"), with no other
 * thread of ours involved:
 *  (a) submit with timeout 0; on PMAP_TIMEOUT drain (one blocking next, then whatever is
 *      ready without waiting), then retry; at the end close and drain to DONE;
 *  (b) source mode: the pool pulls the input, the caller only consumes.
 * Both must finish (watchdog), deliver in order, and return every item exactly once.
 */
#include "common.h"

enum { N = 10000 };

static void take(pmap_pool *pool, pmap_result *r, struct ledger *ids, uint64_t *next_index)
{
    CHECK(r->index == *next_index, "index %" PRIu64 ", expected %" PRIu64, r->index,
          *next_index);
    CHECK(r->status == PMAP_ITEM_OK, "status %d", r->status);
    struct item *it = r->item;
    CHECK(it->id == r->index && ((struct value *)r->value)->id == it->id, "wrong item/value");
    ledger_mark(ids, it->id);
    result_release(r);
    (*next_index)++;
    (void)pool;
}

static void pattern_submit_and_drain(uint32_t capacity)
{
    pmap_options o = test_opts(work_basic, NULL, 2, capacity, true);
    pmap_pool *pool = test_pool(&o);
    struct ledger ids;
    ledger_init(&ids, N);
    uint64_t next_index = 0, timeouts = 0;
    pmap_result r;
    for (uint64_t i = 0; i < N; i++) {
        struct item *it = item_new(i);
        it->cost_us = i % 100 == 0 ? 500 : 0;
        pmap_status st;
        while ((st = pmap_submit(pool, it, NOWAIT)) == PMAP_TIMEOUT) {
            timeouts++;
            /* Full: only pmap_next makes room. Wait for one, then take what is ready. */
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            take(pool, &r, &ids, &next_index);
            while ((st = pmap_next(pool, &r, NOWAIT)) == PMAP_OK)
                take(pool, &r, &ids, &next_index);
            CHECK_ST(st, PMAP_TIMEOUT);
        }
        CHECK_OK(st);
        pmap_stats s = test_stats(pool);
        CHECK(capacity == 0 || s.in_flight <= capacity, "in_flight %" PRIu64, s.in_flight);
    }
    CHECK_OK(pmap_close(pool));
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK)
        take(pool, &r, &ids, &next_index);
    CHECK_ST(st, PMAP_DONE);
    CHECK(next_index == N, "%" PRIu64 " of %d came back", next_index, N);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
    CHECK(timeouts > 0, "the pool never filled up: the drain path was not exercised");
    printf("single_thread_patterns: (a) capacity %u: %" PRIu64 " PMAP_TIMEOUTs drained\n",
           capacity, timeouts);
}

struct counter_source {
    uint64_t next;
};

static int32_t source(void *ctx, void **out)
{
    struct counter_source *s = ctx;
    if (s->next == N)
        return 0;
    struct item *it = item_new(s->next);
    it->cost_us = s->next % 100 == 0 ? 500 : 0;
    s->next++;
    *out = it;
    return 1;
}

static void pattern_source(uint32_t capacity)
{
    struct counter_source src = {0};
    pmap_options o = test_opts(work_basic, &src, 2, capacity, true);
    o.source = source;
    pmap_pool *pool = test_pool(&o);
    struct ledger ids;
    ledger_init(&ids, N);
    uint64_t next_index = 0;
    pmap_result r;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK)
        take(pool, &r, &ids, &next_index);
    CHECK_ST(st, PMAP_DONE);
    CHECK(next_index == N, "%" PRIu64 " of %d came back", next_index, N);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
}

int main(void)
{
    watchdog(20);
    pattern_submit_and_drain(8);
    pattern_submit_and_drain(1);
    pattern_submit_and_drain(0);
    pattern_source(8);
    pattern_source(1);
    pattern_source(0);
    check_all_released();
    printf("single_thread_patterns: ok\n");
    return 0;
}
