/*
 * cancel: deterministic cancel (libuv's saturate-the-pool pattern) and the post-cancel bound
 * (oneTBB's "too many tasks executed after cancellation"). RELIABILITY.md, guarantee 4.
 *
 * Part 1, deterministic: for workers W in {1, 2, 4, 8}, queued items K in {1, 7, 64, 500},
 * ordered and unordered, and pmap_cancel from the main thread or from another thread: park
 * every worker in a gate (one item at a time, each seen parked before the next is submitted),
 * queue K more items, cancel. Exactly K items come back PMAP_ITEM_CANCELLED (worker
 * PMAP_NO_WORKER, no value, zero work calls); in unordered mode all K come back *before* the
 * gate opens; the W parked items finish normally after it opens; stats add up.
 *
 * Part 2, random: --cancels N (default 1000) pools with random workers (1-8), capacity,
 * order, item costs (0-20 us, spun or slept); a producer thread and a consumer thread keep
 * the pool busy; pmap_cancel comes after a random delay from the main thread, from the
 * consumer after a random number of results, or from inside a work callback. The work
 * callback counts every call that starts after a pmap_cancel call has *returned* (a global
 * flag set right after it returns): that count is at most W in every run. Also exactly once,
 * and no item reported cancelled ever ran. The summary prints the total and the largest count.
 *
 * Usage: cancel [--cancels N] [--seed S]
 */
#include "rel.h"

/* ------------------------------------------------------------------------------------ */
/* Part 1                                                                                */
/* ------------------------------------------------------------------------------------ */

static struct gate g_gate;

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1)
        gate_pass(&g_gate);
    return work_basic(ctx, state, item, result);
}

static void *cancel_thread(void *arg)
{
    CHECK_OK(pmap_cancel(arg));
    return NULL;
}

static void deterministic(uint32_t workers, uint32_t k, bool ordered, bool from_thread)
{
    gate_init(&g_gate);
    uint32_t total = workers + k;
    pmap_options o = test_opts(work_gated, NULL, workers, total, ordered);
    pmap_pool *pool = test_pool(&o);
    struct item **items = calloc(total, sizeof *items);
    CHECK(items != NULL, "out of memory");
    for (uint32_t i = 0; i < workers; i++) {
        items[i] = item_new(i);
        items[i]->flags = 1;
        CHECK_OK(pmap_submit(pool, items[i], FOREVER));
        gate_wait_parked(&g_gate, (int)i + 1);
    }
    /* Queue K more, in batches of up to 37 through pmap_submit_many. */
    for (uint32_t i = workers; i < total; i++)
        items[i] = item_new(i);
    for (uint32_t i = workers; i < total;) {
        size_t n = total - i < 37 ? total - i : 37, acc = 0;
        CHECK_OK(pmap_submit_many(pool, (void *const *)&items[i], n, &acc, FOREVER));
        CHECK(acc == n, "accepted %zu of %zu", acc, n);
        i += (uint32_t)n;
    }
    pmap_stats s = test_stats(pool);
    CHECK(s.submitted == total && s.in_flight == total, "before cancel: submitted %" PRIu64,
          s.submitted);
    if (from_thread)
        join(spawn(cancel_thread, pool));
    else
        CHECK_OK(pmap_cancel(pool));
    CHECK(pmap_is_cancelled(pool), "not cancelled");

    struct ledger ids;
    ledger_init(&ids, total);
    pmap_result r;
    uint32_t cancelled = 0, ran = 0;
    if (!ordered) {
        /* All K are ready at once: they do not wait for the parked workers. */
        for (uint32_t i = 0; i < k; i++) {
            CHECK_OK(pmap_next(pool, &r, 5000 * MS));
            CHECK(r.status == PMAP_ITEM_CANCELLED && r.index >= workers,
                  "with the workers parked got index %" PRIu64 " status %d", r.index,
                  r.status);
            CHECK(r.worker == PMAP_NO_WORKER && r.value == NULL && r.error == 0,
                  "cancelled result: worker %u value %p error %d", r.worker, r.value, r.error);
            CHECK(atomic_load(&items[r.index]->runs) == 0, "cancelled item was run");
            ledger_mark(&ids, r.index);
            result_release(&r);
            cancelled++;
        }
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
    }
    gate_open(&g_gate);
    pmap_status st;
    uint64_t expect = 0;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered)
            CHECK(r.index == expect++, "ordered: index %" PRIu64, r.index);
        CHECK(r.item == items[r.index], "wrong item for index %" PRIu64, r.index);
        if (r.index < workers) {
            CHECK(r.status == PMAP_ITEM_OK && r.worker < workers, "parked item: status %d",
                  r.status);
            ran++;
        } else {
            CHECK(r.status == PMAP_ITEM_CANCELLED && r.worker == PMAP_NO_WORKER,
                  "queued item %" PRIu64 ": status %d worker %u", r.index, r.status, r.worker);
            CHECK(atomic_load(&items[r.index]->runs) == 0, "cancelled item %" PRIu64 " ran",
                  r.index);
            cancelled++;
        }
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK_ST(st, PMAP_DONE);
    CHECK(cancelled == k && ran == workers, "%u cancelled (expected %u), %u ran (expected %u)",
          cancelled, k, ran, workers);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, total, workers, 0, k);
    CHECK_OK(pmap_free(pool));
    free(items);
    gate_destroy(&g_gate);
}

/* ------------------------------------------------------------------------------------ */
/* Part 2                                                                                */
/* ------------------------------------------------------------------------------------ */

enum { BY_MAIN, BY_CONSUMER, BY_WORK };

struct rrun {
    pmap_pool *_Atomic pool;
    uint32_t workers, n;
    uint64_t seed;
    int where;
    uint32_t trigger; /* results (BY_CONSUMER) or item id (BY_WORK) */
    atomic_int cancel_called, cancel_returned;
    atomic_uint started, started_after, started_during;
    atomic_uint triggered;
    atomic_uchar *worked, *returned;
    atomic_uint made, freed;
    atomic_uint submitted;
};

struct ritem {
    uint32_t id, cost, kind;
};

static pmap_pool *rpool(struct rrun *r)
{
    pmap_pool *p;
    while ((p = atomic_load(&r->pool)) == NULL)
        sleep_us(20);
    return p;
}

static void cancel_now(struct rrun *r)
{
    atomic_store(&r->cancel_called, 1);
    CHECK_OK(pmap_cancel(rpool(r)));
    atomic_store(&r->cancel_returned, 1);
}

static int32_t work_random(void *ctx, void *state, void *item, void **result)
{
    (void)state;
    struct rrun *r = ctx;
    struct ritem *it = item;
    if (atomic_load(&r->cancel_returned))
        atomic_fetch_add(&r->started_after, 1);
    else if (atomic_load(&r->cancel_called))
        atomic_fetch_add(&r->started_during, 1); /* not bounded: shows the probe can see */
    atomic_fetch_add(&r->started, 1);
    unsigned prev = atomic_fetch_add(&r->worked[it->id], 1);
    CHECK(prev == 0, "item %u ran twice", it->id);
    if (it->kind == 0) {
        volatile uint64_t x = it->id;
        for (uint32_t i = 0; i < it->cost * 200; i++)
            x = x * 3 + 1;
    } else {
        sleep_us(it->cost);
    }
    if (r->where == BY_WORK && it->id == r->trigger && !atomic_exchange(&r->triggered, 1))
        cancel_now(r);
    *result = NULL;
    return 0;
}

static void settle_random(struct rrun *r, const pmap_result *res)
{
    struct ritem *it = res->item;
    CHECK(it != NULL && it->id < r->n, "bad item");
    unsigned prev = atomic_fetch_add(&r->returned[it->id], 1);
    CHECK(prev == 0, "item %u came back twice", it->id);
    if (res->status == PMAP_ITEM_CANCELLED)
        CHECK(atomic_load(&r->worked[it->id]) == 0 && res->worker == PMAP_NO_WORKER,
              "item %u reported cancelled but ran", it->id);
    else
        CHECK(res->status == PMAP_ITEM_OK && atomic_load(&r->worked[it->id]) == 1,
              "item %u: status %d", it->id, res->status);
    free(it);
    atomic_fetch_add(&r->freed, 1);
}

static void *random_producer(void *arg)
{
    struct rrun *r = arg;
    uint64_t rng = r->seed ^ 0xABCDEF;
    for (uint32_t id = 0; id < r->n; id++) {
        struct ritem *it = malloc(sizeof *it);
        CHECK(it != NULL, "out of memory");
        uint64_t h = rng_next(&rng);
        it->id = id;
        it->kind = (uint32_t)(h & 1);
        it->cost = (uint32_t)((h >> 8) % 21);
        atomic_fetch_add(&r->made, 1);
        pmap_status st = pmap_submit(rpool(r), it, FOREVER);
        if (st != PMAP_OK) {
            CHECK_ST(st, PMAP_CANCELLED);
            free(it);
            atomic_fetch_add(&r->freed, 1);
            break;
        }
        atomic_fetch_add(&r->submitted, 1);
    }
    return NULL;
}

static void *random_consumer(void *arg)
{
    struct rrun *r = arg;
    pmap_result res;
    pmap_status st;
    uint32_t got = 0;
    while ((st = pmap_next(rpool(r), &res, FOREVER)) == PMAP_OK) {
        settle_random(r, &res);
        got++;
        if (r->where == BY_CONSUMER && got >= r->trigger && !atomic_exchange(&r->triggered, 1))
            cancel_now(r);
    }
    CHECK_ST(st, PMAP_DONE);
    return NULL;
}

struct totals {
    uint64_t runs, started, after, max_after, during, cancelled_items, by[3];
};

static void random_cancel(uint64_t seed, struct totals *t)
{
    struct rrun *r = calloc(1, sizeof *r);
    CHECK(r != NULL, "out of memory");
    uint64_t s = seed;
    r->seed = seed;
    r->workers = 1 + (uint32_t)(rng_next(&s) % 8);
    uint32_t caps[] = {1, 2, 8, 32, 256};
    uint32_t capacity = caps[rng_next(&s) % 5];
    bool ordered = rng_next(&s) & 1;
    r->n = 200 + (uint32_t)(rng_next(&s) % 2000);
    r->where = (int)(rng_next(&s) % 3);
    r->trigger = (uint32_t)(rng_next(&s) % (r->n / 2));
    uint64_t delay_us = rng_next(&s) % 2000;
    r->worked = calloc(r->n, 1);
    r->returned = calloc(r->n, 1);
    CHECK(r->worked && r->returned, "out of memory");

    pmap_options o = test_opts(work_random, r, r->workers, capacity, ordered);
    pmap_pool *pool = test_pool(&o);
    atomic_store(&r->pool, pool);
    pthread_t tc = spawn(random_consumer, r);
    pthread_t tp = spawn(random_producer, r);
    if (r->where == BY_MAIN) {
        sleep_us(delay_us);
        if (!atomic_exchange(&r->triggered, 1))
            cancel_now(r);
    }
    join(tp);
    /* If the trigger was never reached (all done first), cancel now so DONE comes. */
    if (!atomic_exchange(&r->triggered, 1))
        cancel_now(r);
    join(tc);
    /* Every work call succeeds, so: succeeded = work calls, the rest never started. */
    uint32_t sub = atomic_load(&r->submitted), started = atomic_load(&r->started);
    check_stats_settled(pool, sub, started, 0, sub - started);
    CHECK_OK(pmap_free(pool));
    unsigned after = atomic_load(&r->started_after);
    CHECK(after <= r->workers,
          "seed %" PRIu64 ": %u work calls started after pmap_cancel returned, with %u workers",
          seed, after, r->workers);
    for (uint32_t i = 0; i < atomic_load(&r->submitted); i++)
        CHECK(atomic_load(&r->returned[i]) == 1, "seed %" PRIu64 ": item %u came back %u times",
              seed, i, atomic_load(&r->returned[i]));
    CHECK(atomic_load(&r->made) == atomic_load(&r->freed), "items made %u, freed %u",
          atomic_load(&r->made), atomic_load(&r->freed));
    t->runs++;
    t->started += atomic_load(&r->started);
    t->after += after;
    t->during += atomic_load(&r->started_during);
    if (after > t->max_after)
        t->max_after = after;
    t->cancelled_items += atomic_load(&r->submitted) - atomic_load(&r->started);
    t->by[r->where]++;
    free(r->worked);
    free(r->returned);
    free(r);
}

int main(int argc, char **argv)
{
    uint64_t cancels = 1000, seed = now_ns();
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = rel_opt(argc, argv, &i, "--cancels")))
            cancels = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--seed")))
            seed = rel_parse_u64(v);
        else {
            fprintf(stderr, "cancel: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    watchdog(300);
    printf("cancel: seed %" PRIu64 "\n", seed);
    fflush(stdout);

    uint64_t t0 = now_ns();
    static const uint32_t WS[] = {1, 2, 4, 8}, KS[] = {1, 7, 64, 500};
    int configs = 0;
    for (size_t w = 0; w < 4; w++)
        for (size_t k = 0; k < 4; k++)
            for (int ordered = 0; ordered < 2; ordered++) {
                deterministic(WS[w], KS[k], ordered, (w + k) % 2 == 1);
                configs++;
            }
    check_all_released();
    printf("cancel deterministic: %d configurations (workers 1-8 parked, 1-500 queued, "
           "ordered and unordered): exactly K cancelled, 0 work calls for them (%.0f ms)\n",
           configs, ms_since(t0));

    t0 = now_ns();
    struct totals t = {0};
    uint64_t master = seed;
    for (uint64_t i = 0; i < cancels; i++)
        random_cancel(rng_next(&master), &t);
    printf("cancel random: seed %" PRIu64 ", %" PRIu64 " cancels (%" PRIu64 " from main, %" PRIu64
           " from a consumer, %" PRIu64 " inside work), %" PRIu64 " work calls, %" PRIu64
           " items never started; work calls started after pmap_cancel returned: %" PRIu64
           " total, max %" PRIu64 " in a run (bound: workers); %" PRIu64
           " started while pmap_cancel was running (not bounded) (%.0f ms)\n",
           seed, t.runs, t.by[BY_MAIN], t.by[BY_CONSUMER], t.by[BY_WORK], t.started,
           t.cancelled_items, t.after, t.max_after, t.during, ms_since(t0));
    return 0;
}
