/*
 * bounded: at most `capacity` items are in flight, whatever the skew.
 *
 * Part 1 measures it from inside the work function: when item i runs, items 0..i were
 * all accepted, and at most `next_calls` (pmap_next calls started by the only consumer)
 * were handed back, so i + 1 - next_calls <= capacity must hold. A monitor thread checks
 * stats.in_flight <= capacity at the same time.
 *
 * Part 2 shows head-of-line blocking stalls admission in ordered mode instead of growing
 * the reorder buffer: capacity 4, item 0 is held for 200 ms, items 1..3 finish at once; a
 * fifth submit (timeout 0 or 10 ms) is PMAP_TIMEOUT until item 0 is handed back. In
 * unordered mode the finished items come out while item 0 still runs.
 *
 * Part 3: a producer blocked for room is not left waiting while there is room. While items
 * are cheap the pool hands room out in batches; a consumer that takes one result and then
 * waits for the producer's next item (a feedback loop) must still get it. Also from a cold
 * start: the producer (or the feeder) blocks before any item was measured, when room is
 * still handed out per slot, and the pool learns that items are cheap while it sleeps.
 */
#include "common.h"

enum { WORKERS = 4 };

struct ctx {
    pmap_pool *pool;
    uint32_t capacity;
    uint64_t n;
    atomic_ullong next_calls;
    atomic_llong max_lower_bound;
    atomic_bool stop_monitor;
    atomic_ullong monitor_samples;
};

static int32_t work_measure(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct item *it = item;
    long long calls = (long long)atomic_load(&c->next_calls);
    long long in_flight_at_least = (long long)it->id + 1 - calls;
    CHECK(in_flight_at_least <= (long long)c->capacity,
          "item %" PRIu64 " runs while at most %lld of the items before it were handed back: "
          "at least %lld in flight, capacity %u",
          it->id, calls, in_flight_at_least, c->capacity);
    long long prev = atomic_load(&c->max_lower_bound);
    while (in_flight_at_least > prev &&
           !atomic_compare_exchange_weak(&c->max_lower_bound, &prev, in_flight_at_least)) {
    }
    return work_basic(NULL, state, item, result);
}

static void *producer(void *arg)
{
    struct ctx *c = arg;
    uint64_t rng = 42;
    for (uint64_t i = 0; i < c->n; i++) {
        struct item *it = item_new(i);
        uint64_t x = rng_next(&rng) % 1000;
        it->cost_us = x < 5 ? 2000 : (uint32_t)(x % 20); /* mostly tiny, a few 2 ms spikes */
        CHECK_OK(pmap_submit(c->pool, it, FOREVER));
        if (i % 512 == 0) {
            pmap_stats s = test_stats(c->pool);
            CHECK(s.in_flight <= c->capacity, "in_flight %" PRIu64 " > capacity %u",
                  s.in_flight, c->capacity);
        }
    }
    CHECK_OK(pmap_close(c->pool));
    return NULL;
}

static void *monitor(void *arg)
{
    struct ctx *c = arg;
    while (!atomic_load(&c->stop_monitor)) {
        pmap_stats s = test_stats(c->pool);
        CHECK(s.in_flight <= c->capacity, "stats.in_flight %" PRIu64 " > capacity %u",
              s.in_flight, c->capacity);
        CHECK(s.in_flight <= s.submitted, "in_flight > submitted");
        CHECK(s.succeeded + s.failed + s.cancelled <= s.submitted,
              "more outcomes than submitted items");
        atomic_fetch_add(&c->monitor_samples, 1);
        sleep_us(100);
    }
    return NULL;
}

static void measure(uint32_t capacity, bool ordered, uint64_t n)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.capacity = capacity;
    c.n = n;
    pmap_options o = test_opts(work_measure, &c, WORKERS, capacity, ordered);
    c.pool = test_pool(&o);
    pthread_t tp = spawn(producer, &c);
    pthread_t tm = spawn(monitor, &c);
    struct ledger ids;
    ledger_init(&ids, n);
    pmap_result r;
    uint64_t got = 0;
    for (;;) {
        /* Counted before the call: an upper bound on what the pool has handed back. */
        atomic_fetch_add(&c.next_calls, 1);
        pmap_status st = pmap_next(c.pool, &r, FOREVER);
        if (st == PMAP_DONE)
            break;
        CHECK_OK(st);
        if (ordered)
            CHECK(r.index == got, "index %" PRIu64 ", expected %" PRIu64, r.index, got);
        ledger_mark(&ids, r.index);
        result_release(&r);
        got++;
        if (got % 997 == 0)
            sleep_ms(1); /* a slow consumer: the window fills up and admission must stall */
    }
    join(tp);
    atomic_store(&c.stop_monitor, true);
    join(tm);
    CHECK(got == n, "got %" PRIu64, got);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(c.pool, n, n, 0, 0);
    CHECK_OK(pmap_free(c.pool));
    long long max_lb = atomic_load(&c.max_lower_bound);
    printf("bounded: capacity %u %s: max in flight seen from work >= %lld, %llu stats samples\n",
           capacity, ordered ? "ordered" : "unordered", max_lb,
           (unsigned long long)atomic_load(&c.monitor_samples));
    /* The measurement must be able to see a full window, or it proves nothing. */
    CHECK(max_lb >= (long long)capacity / 2, "the window never filled (max %lld of %u)", max_lb,
          capacity);
}

/* Part 2: head-of-line blocking. Item 0 is held on a gate (instead of a fixed sleep, so
 * the test does not depend on timing) for at least 200 ms. */
static struct gate g_head;

static int32_t work_head(void *ctx, void *state, void *item, void **result)
{
    struct item *it = item;
    if (it->flags == 1)
        gate_pass(&g_head);
    return work_basic(ctx, state, item, result);
}

static void head_of_line(bool ordered)
{
    enum { CAP = 4 };
    gate_init(&g_head);
    pmap_options o = test_opts(work_head, NULL, 2, CAP, ordered);
    pmap_pool *pool = test_pool(&o);
    struct item *items[CAP + 1];
    for (int i = 0; i < CAP; i++) {
        items[i] = item_new((uint64_t)i);
        items[i]->flags = i == 0;
        CHECK_OK(pmap_submit(pool, items[i], NOWAIT));
        if (i == 0)
            gate_wait_parked(&g_head, 1); /* item 0 runs before 1..3 are queued */
    }
    items[CAP] = item_new(CAP);
    /* Wait until items 1..3 finished (item 0 is still held). */
    while (test_stats(pool).succeeded < CAP - 1)
        sleep_ms(1);
    pmap_stats s = test_stats(pool);
    CHECK(s.in_flight == CAP, "in_flight %" PRIu64 ", expected %d", s.in_flight, CAP);
    CHECK_ST(pmap_submit(pool, items[CAP], NOWAIT), PMAP_TIMEOUT);
    pmap_result r;
    if (ordered) {
        /* Item 0 blocks delivery: nothing is ready, and nothing more is admitted, however
         * long item 0 takes. */
        uint64_t t0 = now_ns();
        while (ms_since(t0) < 200) {
            CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
            CHECK_ST(pmap_submit(pool, items[CAP], 10 * MS), PMAP_TIMEOUT);
            s = test_stats(pool);
            CHECK(s.in_flight == CAP, "in_flight %" PRIu64 " while the head is slow",
                  s.in_flight);
        }
        gate_open(&g_head);
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == 0, "index %" PRIu64, r.index);
        result_release(&r);
        CHECK_OK(pmap_submit(pool, items[CAP], NOWAIT)); /* one slot freed */
        struct item *extra = item_new(CAP + 1);
        CHECK_ST(pmap_submit(pool, extra, NOWAIT), PMAP_TIMEOUT);
        item_free(extra);
        for (uint64_t i = 1; i <= CAP; i++) {
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            CHECK(r.index == i, "index %" PRIu64 ", expected %" PRIu64, r.index, i);
            result_release(&r);
        }
    } else {
        /* Unordered: the finished items come out while item 0 is still held. */
        for (int i = 1; i < CAP; i++) {
            CHECK_OK(pmap_next(pool, &r, NOWAIT));
            CHECK(r.index >= 1 && r.index < CAP, "index %" PRIu64, r.index);
            result_release(&r);
        }
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
        /* Three slots are free now. */
        CHECK_OK(pmap_submit(pool, items[CAP], NOWAIT));
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == CAP, "index %" PRIu64 " while item 0 is held", r.index);
        result_release(&r);
        gate_open(&g_head);
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == 0, "index %" PRIu64, r.index);
        result_release(&r);
    }
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    check_stats_settled(pool, CAP + 1, CAP + 1, 0, 0);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_head);
}

struct feeder_thread {
    pmap_pool *pool;
    struct item **items;
    uint64_t n;
    atomic_ullong submitted;
};

static void *produce_blocking(void *arg)
{
    struct feeder_thread *f = arg;
    for (uint64_t i = 0; i < f->n; i++) {
        CHECK_OK(pmap_submit(f->pool, f->items[i], FOREVER));
        atomic_store(&f->submitted, i + 1);
    }
    return NULL;
}

static void producer_room_after_one_result(void)
{
    enum { CAP = 64, WARM = 3000, WAIT_MS = 3000 };
    pmap_options o = test_opts(work_basic, NULL, 2, CAP, true);
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    /* Cheap items first, so the pool measures them and batches its wake-ups. */
    uint64_t taken = 0;
    for (uint64_t i = 0; i < WARM; i++) {
        struct item *it = item_new(i);
        while (pmap_submit(pool, it, NOWAIT) == PMAP_TIMEOUT) {
            /* Refused (the item stays ours): make room. */
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            CHECK(r.index == taken++, "warm-up index %" PRIu64, r.index);
            result_release(&r);
        }
    }
    while (taken < WARM) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == taken++, "warm-up index %" PRIu64, r.index);
        result_release(&r);
    }
    struct feeder_thread f = {.pool = pool, .n = CAP + 1};
    f.items = calloc(CAP + 1, sizeof *f.items);
    for (uint64_t i = 0; i < CAP + 1; i++)
        f.items[i] = item_new(WARM + i);
    atomic_init(&f.submitted, 0);
    pthread_t t = spawn(produce_blocking, &f);
    uint64_t t0 = now_ns();
    while (atomic_load(&f.submitted) < CAP && ms_since(t0) < WAIT_MS)
        sleep_ms(1);
    CHECK(atomic_load(&f.submitted) == CAP, "the producer submitted %llu, not a full window",
          (unsigned long long)atomic_load(&f.submitted));
    sleep_ms(50); /* the window is full: the producer waits for room, the items finish */
    CHECK(atomic_load(&f.submitted) == CAP, "a submit went beyond the window");
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == WARM, "index %" PRIu64, r.index);
    result_release(&r);
    t0 = now_ns();
    while (atomic_load(&f.submitted) == CAP && ms_since(t0) < WAIT_MS)
        sleep_ms(1);
    CHECK(atomic_load(&f.submitted) == CAP + 1,
          "one slot was free for %d ms, yet the blocked producer did not take it: it waits "
          "for a batch of room the consumer may never free",
          WAIT_MS);
    join(t);
    for (uint64_t i = WARM + 1; i < WARM + CAP + 1; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64, r.index);
        result_release(&r);
    }
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    free(f.items);
}

/* Cold start: the workers are held in worker_init, so nothing is measured while the
 * filler (a producer thread, or the feeder of a source pool) fills the window and blocks.
 * Then CAP cheap items run (the pool now batches room, CAP / 2 at a time), the consumer
 * takes one result, and waits for the filler's next item. */
enum { COLD_CAP = 8 };
static struct gate g_cold;
static atomic_ullong g_cold_pulled;

static void *cold_init(void *ctx, uint32_t worker)
{
    (void)ctx;
    (void)worker;
    gate_pass(&g_cold);
    return NULL;
}

static int32_t cold_source(void *ctx, void **out)
{
    (void)ctx;
    uint64_t n = atomic_load(&g_cold_pulled);
    if (n == COLD_CAP + 1)
        return 0;
    *out = item_new(n);
    atomic_store(&g_cold_pulled, n + 1);
    return 1;
}

static void cold_start_room(bool source)
{
    enum { CAP = COLD_CAP, WAIT_MS = 3000 };
    gate_init(&g_cold);
    atomic_store(&g_cold_pulled, 0);
    pmap_options o = test_opts(work_basic, NULL, 1, CAP, true);
    o.worker_init = cold_init;
    if (source)
        o.source = cold_source;
    pmap_pool *pool = test_pool(&o);
    struct feeder_thread f = {.pool = pool, .n = CAP + 1};
    atomic_init(&f.submitted, 0);
    atomic_ullong *filled = source ? &g_cold_pulled : &f.submitted;
    pthread_t t = 0;
    if (!source) {
        f.items = calloc(CAP + 1, sizeof *f.items);
        for (uint64_t i = 0; i < CAP + 1; i++)
            f.items[i] = item_new(i);
        t = spawn(produce_blocking, &f);
    }
    gate_wait_parked(&g_cold, 1);
    uint64_t t0 = now_ns();
    while (atomic_load(filled) < CAP && ms_since(t0) < WAIT_MS)
        sleep_ms(1);
    sleep_ms(50); /* the filler blocks for room before any item ran */
    CHECK(atomic_load(filled) == CAP, "%s filled %llu slots, not the window of %d",
          source ? "the feeder" : "the producer", (unsigned long long)atomic_load(filled), CAP);
    gate_open(&g_cold);
    t0 = now_ns();
    while (test_stats(pool).succeeded < CAP && ms_since(t0) < WAIT_MS)
        sleep_ms(1);
    CHECK(test_stats(pool).succeeded == CAP, "the window's items did not finish");
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == 0, "index %" PRIu64, r.index);
    result_release(&r);
    t0 = now_ns();
    while (atomic_load(filled) == CAP && ms_since(t0) < WAIT_MS)
        sleep_ms(1);
    CHECK(atomic_load(filled) == CAP + 1,
          "one slot was free for %d ms, yet %s did not take it: it blocked while room came "
          "a slot at a time, and sleeps on now that room comes in batches",
          WAIT_MS, source ? "the feeder" : "the blocked producer");
    if (!source) {
        join(t);
        CHECK_OK(pmap_close(pool));
    }
    for (uint64_t i = 1; i < CAP + 1; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64, r.index);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    free(f.items);
    gate_destroy(&g_cold);
}

int main(void)
{
    watchdog(40);
    measure(8, false, 20000);
    measure(8, true, 20000);
    measure(1, true, 2000);
    measure(64, false, 20000);
    head_of_line(true);
    head_of_line(false);
    producer_room_after_one_result();
    cold_start_room(false);
    cold_start_room(true);
    check_all_released();
    printf("bounded: ok\n");
    return 0;
}
