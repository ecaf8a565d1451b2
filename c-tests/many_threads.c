/*
 * many_threads: 3 producer threads and 3 consumer threads share one pool, 10^5 items.
 * Every item comes back exactly once (to exactly one consumer), every index 0..N-1 is
 * given out exactly once, each producer's items get increasing indices (submission
 * order), and in ordered mode each consumer sees increasing indices. Then free.
 */
#include "common.h"

enum { N = 100000, PRODUCERS = 3, CONSUMERS = 3, WORKERS = 3 };

struct shared {
    pmap_pool *pool;
    struct item *items; /* N items, preallocated */
    uint64_t *index_of; /* index given to item id */
    struct ledger by_id, by_index;
    atomic_int producers_left;
    bool ordered;
};

struct producer {
    struct shared *s;
    int p;
};

static int32_t work(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    struct item *it = item;
    unsigned prev = atomic_fetch_add(&it->runs, 1);
    CHECK(prev == 0, "item %" PRIu64 " ran twice", it->id);
    *result = (void *)(uintptr_t)(it->id * 2 + 1);
    return 0;
}

static void *produce(void *arg)
{
    struct producer *pr = arg;
    struct shared *s = pr->s;
    uint64_t from = (uint64_t)pr->p * N / PRODUCERS, to = (uint64_t)(pr->p + 1) * N / PRODUCERS;
    for (uint64_t id = from; id < to; id++) {
        /* Mix single and batch submits. */
        if (id % 64 == 0 && id + 8 <= to) {
            void *batch[8];
            for (int k = 0; k < 8; k++)
                batch[k] = &s->items[id + (uint64_t)k];
            size_t acc = 0;
            CHECK_OK(pmap_submit_many(s->pool, batch, 8, &acc, FOREVER));
            CHECK(acc == 8, "accepted %zu", acc);
            id += 7;
        } else {
            CHECK_OK(pmap_submit(s->pool, &s->items[id], FOREVER));
        }
    }
    if (atomic_fetch_sub(&s->producers_left, 1) == 1)
        CHECK_OK(pmap_close(s->pool)); /* the last producer closes */
    return NULL;
}

static void *consume(void *arg)
{
    struct shared *s = arg;
    pmap_result r[16];
    uint64_t last = 0;
    bool first = true;
    for (;;) {
        size_t got = 0;
        pmap_status st;
        /* Mix single and batch takes. */
        if (rand() % 2) {
            st = pmap_next(s->pool, &r[0], FOREVER);
            got = st == PMAP_OK;
        } else {
            st = pmap_next_many(s->pool, r, 16, &got, FOREVER);
        }
        if (st == PMAP_DONE)
            break;
        CHECK_OK(st);
        CHECK(got >= 1 && got <= 16, "got %zu", got);
        for (size_t k = 0; k < got; k++) {
            struct item *it = r[k].item;
            CHECK(r[k].status == PMAP_ITEM_OK, "status %d", r[k].status);
            CHECK((uintptr_t)r[k].value == it->id * 2 + 1, "value of another item");
            CHECK(r[k].worker < WORKERS, "worker %u", r[k].worker);
            if (s->ordered) {
                CHECK(first || r[k].index > last,
                      "ordered: this consumer got index %" PRIu64 " after %" PRIu64,
                      r[k].index, last);
            }
            first = false;
            last = r[k].index;
            ledger_mark(&s->by_id, it->id);
            ledger_mark(&s->by_index, r[k].index);
            s->index_of[it->id] = r[k].index;
        }
    }
    CHECK_ST(pmap_next(s->pool, &r[0], NOWAIT), PMAP_DONE);
    return NULL;
}

static void run(bool ordered, uint32_t capacity)
{
    struct shared s;
    memset(&s, 0, sizeof s);
    s.ordered = ordered;
    s.items = calloc(N, sizeof *s.items);
    s.index_of = calloc(N, sizeof *s.index_of);
    CHECK(s.items && s.index_of, "out of memory");
    for (uint64_t i = 0; i < N; i++) {
        s.items[i].magic = ITEM_LIVE;
        s.items[i].id = i;
    }
    ledger_init(&s.by_id, N);
    ledger_init(&s.by_index, N);
    atomic_store(&s.producers_left, PRODUCERS);
    pmap_options o = test_opts(work, NULL, WORKERS, capacity, ordered);
    s.pool = test_pool(&o);

    uint64_t t0 = now_ns();
    pthread_t cons[CONSUMERS], prods[PRODUCERS];
    struct producer pr[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        cons[i] = spawn(consume, &s);
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i] = (struct producer){&s, i};
        prods[i] = spawn(produce, &pr[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        join(prods[i]);
    for (int i = 0; i < CONSUMERS; i++)
        join(cons[i]);
    double ms = ms_since(t0);

    ledger_check_all_once(&s.by_id);
    ledger_check_all_once(&s.by_index);
    /* Each producer's items were indexed in its own submission order. */
    for (int p = 0; p < PRODUCERS; p++) {
        uint64_t from = (uint64_t)p * N / PRODUCERS, to = (uint64_t)(p + 1) * N / PRODUCERS;
        for (uint64_t id = from + 1; id < to; id++)
            CHECK(s.index_of[id] > s.index_of[id - 1],
                  "producer %d: item %" PRIu64 " got index %" PRIu64 " before item %" PRIu64
                  " (%" PRIu64 ")",
                  p, id, s.index_of[id], id - 1, s.index_of[id - 1]);
    }
    for (uint64_t i = 0; i < N; i++)
        CHECK(atomic_load(&s.items[i].runs) == 1, "item %" PRIu64 " ran %u times", i,
              atomic_load(&s.items[i].runs));
    check_stats_settled(s.pool, N, N, 0, 0);
    CHECK_OK(pmap_free(s.pool));
    ledger_destroy(&s.by_id);
    ledger_destroy(&s.by_index);
    free(s.items);
    free(s.index_of);
    printf("many_threads: %s capacity %u: %d items in %.0f ms\n",
           ordered ? "ordered" : "unordered", capacity, N, ms);
}

int main(void)
{
    watchdog(60);
    srand(7);
    run(false, 64);
    run(true, 64);
    run(false, 3);
    printf("many_threads: ok\n");
    return 0;
}
