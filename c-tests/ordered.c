/*
 * ordered: in ordered mode pmap_next returns indices 0, 1, 2 … with no gap, even though
 * random per-item sleeps make items finish in a different order (checked, so the test
 * proves something). A producer thread submits while the main thread consumes.
 */
#include "common.h"

enum { N = 3000, WORKERS = 4 };

struct producer {
    pmap_pool *pool;
    uint64_t n;
    uint64_t seed;
    uint32_t max_cost_us;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    uint64_t rng = p->seed;
    for (uint64_t i = 0; i < p->n; i++) {
        struct item *it = item_new(i);
        it->cost_us = (uint32_t)(rng_next(&rng) % (p->max_cost_us + 1));
        CHECK_OK(pmap_submit(p->pool, it, FOREVER));
    }
    CHECK_OK(pmap_close(p->pool));
    return NULL;
}

static void run(uint32_t capacity, uint32_t max_cost_us, uint64_t seed)
{
    pmap_options o = test_opts(work_basic, NULL, WORKERS, capacity, true);
    pmap_pool *pool = test_pool(&o);
    struct producer p = {pool, N, seed, max_cost_us};
    pthread_t t = spawn(produce, &p);

    struct ledger ids;
    ledger_init(&ids, N);
    uint64_t prev_finished = 0, out_of_order = 0;
    pmap_result r;
    for (uint64_t i = 0; i < N; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i, "ordered pool returned index %" PRIu64 " where %" PRIu64
                            " was due",
              r.index, i);
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        CHECK(r.worker < WORKERS, "worker %u", r.worker);
        struct item *it = r.item;
        struct value *v = r.value;
        CHECK(it != NULL && it->id == i, "index %" PRIu64 " carries item %" PRIu64, i,
              it ? it->id : UINT64_MAX);
        CHECK(v->id == i, "index %" PRIu64 " carries the value of item %" PRIu64, i, v->id);
        CHECK(atomic_load(&it->runs) == 1, "item %" PRIu64 " ran %u times", i,
              atomic_load(&it->runs));
        uint64_t fin = atomic_load(&it->finished);
        CHECK(fin != 0, "item %" PRIu64 " handed back before it finished", i);
        if (fin < prev_finished)
            out_of_order++;
        prev_finished = fin;
        ledger_mark(&ids, it->id);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, 0), PMAP_DONE);
    join(t);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
    /* The test is only meaningful if completion order differed from index order. */
    CHECK(out_of_order > 0, "with random costs, no item finished out of order (capacity %u)",
          capacity);
    printf("ordered: capacity %u: %" PRIu64 " of %d items finished out of order\n", capacity,
           out_of_order, N);
}

int main(void)
{
    watchdog(30);
    run(64, 400, 1);
    run(4, 400, 2);
    run(0, 100, 3); /* the default window */
    check_all_released();
    printf("ordered: ok\n");
    return 0;
}
