/*
 * source: a pool that pulls its input from a source callback.
 *  - pmap_submit / pmap_submit_many are refused with PMAP_INVALID;
 *  - every item comes back, in order (ordered) or exactly once (unordered), then DONE;
 *  - the source is called only from one thread, never the caller's, one call at a time,
 *    and never again after it returned end-of-input or an error;
 *  - a source error at index k arrives as PMAP_ITEM_SOURCE_FAILED at index k (item NULL,
 *    value NULL, the code in error, worker PMAP_NO_WORKER), then DONE; stats count it in
 *    submitted and failed;
 *  - the source is pulled only while there is room (bounded), pmap_close stops the pulling,
 *    pmap_cancel ends the stream, and pmap_free drops every pulled item exactly once;
 *  - a live source (one that blocks until input arrives): every item it returns comes back
 *    without waiting for further input; after pmap_cancel / pmap_close only the call in
 *    progress finishes (its item comes back, cancelled after a cancel), then DONE and no
 *    more calls; with a full window of cheap items, one result taken is enough room for
 *    the source to be called again.
 */
#include "common.h"

struct src {
    pthread_t thread;
    bool thread_known;
    pthread_t caller;
    atomic_int in_call;
    atomic_ullong calls;
    uint64_t next_id;
    uint64_t limit;    /* items to produce; UINT64_MAX = endless */
    uint64_t fail_at;  /* index at which to fail; UINT64_MAX = never */
    int32_t fail_code;
    atomic_bool finished; /* returned 0 or an error */
    uint64_t delay_us;
    atomic_ullong produced;
};

static int32_t source(void *ctx, void **out)
{
    struct src *s = ctx;
    CHECK(atomic_fetch_add(&s->in_call, 1) == 0, "two source calls at once");
    CHECK(!pthread_equal(pthread_self(), s->caller), "source called on the caller's thread");
    if (!s->thread_known) {
        s->thread = pthread_self();
        s->thread_known = true;
    }
    CHECK(pthread_equal(pthread_self(), s->thread), "source called from a second thread");
    CHECK(!atomic_load(&s->finished), "source called again after it ended");
    atomic_fetch_add(&s->calls, 1);
    if (s->delay_us)
        sleep_us(s->delay_us);
    int32_t rc;
    if (s->next_id == s->fail_at) {
        atomic_store(&s->finished, true);
        rc = s->fail_code;
    } else if (s->next_id >= s->limit) {
        atomic_store(&s->finished, true);
        rc = 0;
    } else {
        *out = item_new(s->next_id++);
        atomic_fetch_add(&s->produced, 1);
        rc = 1;
    }
    atomic_fetch_sub(&s->in_call, 1);
    return rc;
}

static void src_init(struct src *s, uint64_t limit, uint64_t fail_at, int32_t code)
{
    memset(s, 0, sizeof *s);
    s->caller = pthread_self();
    s->limit = limit;
    s->fail_at = fail_at;
    s->fail_code = code;
}

static pmap_pool *source_pool(struct src *s, uint32_t workers, uint32_t capacity, bool ordered)
{
    pmap_options o = test_opts(work_basic, s, workers, capacity, ordered);
    o.source = source;
    return test_pool(&o);
}

/* Plain run: N items, ordered or not, then DONE. */
static void all_items(bool ordered, uint32_t capacity)
{
    enum { N = 1000 };
    struct src s;
    src_init(&s, N, UINT64_MAX, 0);
    pmap_pool *pool = source_pool(&s, 3, capacity, ordered);

    struct item *mine = item_new(12345);
    CHECK_ST(pmap_submit(pool, mine, NOWAIT), PMAP_INVALID);
    CHECK_LAST_ERROR_NAMES("pmap_submit");
    CHECK_ST(pmap_submit(pool, mine, FOREVER), PMAP_INVALID);
    size_t acc = 99;
    void *batch[1] = {mine};
    CHECK_ST(pmap_submit_many(pool, batch, 1, &acc, FOREVER), PMAP_INVALID);
    CHECK(acc == 0, "accepted %zu", acc);
    CHECK_LAST_ERROR_NAMES("pmap_submit_many");
    item_free(mine);

    struct ledger ids;
    ledger_init(&ids, N);
    pmap_result r;
    for (uint64_t i = 0; i < N; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        if (ordered)
            CHECK(r.index == i, "index %" PRIu64 ", expected %" PRIu64, r.index, i);
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        struct item *it = r.item;
        CHECK(it->id == r.index, "index %" PRIu64 " carries item %" PRIu64, r.index, it->id);
        ledger_mark(&ids, r.index);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_DONE);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    CHECK(atomic_load(&s.calls) == N + 1, "source called %llu times for %d items + end",
          (unsigned long long)atomic_load(&s.calls), N);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_ST(pmap_submit(pool, NULL, NOWAIT), PMAP_INVALID); /* still refused at the end */
    CHECK_OK(pmap_free(pool));
}

/* A source error at index k. */
static void source_error(uint64_t k, int32_t code, bool ordered)
{
    struct src s;
    src_init(&s, UINT64_MAX, k, code);
    pmap_pool *pool = source_pool(&s, 2, 8, ordered);
    struct ledger ids;
    ledger_init(&ids, k + 1);
    pmap_result r;
    bool saw_failure = false;
    uint64_t n = 0;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered)
            CHECK(r.index == n, "index %" PRIu64 ", expected %" PRIu64, r.index, n);
        n++;
        ledger_mark(&ids, r.index);
        if (r.index == k) {
            CHECK(r.status == PMAP_ITEM_SOURCE_FAILED, "index %" PRIu64 ": status %d", k,
                  r.status);
            CHECK(r.item == NULL, "source failure carries item %p", r.item);
            CHECK(r.value == NULL, "source failure carries value %p", r.value);
            CHECK(r.error == code, "source failure error %d, expected %d", r.error, code);
            CHECK(r.worker == PMAP_NO_WORKER, "source failure has worker %u", r.worker);
            saw_failure = true;
        } else {
            CHECK(r.index < k, "index %" PRIu64 " after the source failed at %" PRIu64, r.index,
                  k);
            CHECK(r.status == PMAP_ITEM_OK, "index %" PRIu64 ": status %d", r.index, r.status);
            CHECK(((struct item *)r.item)->id == r.index, "wrong item");
        }
        result_release(&r);
    }
    CHECK_ST(st, PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK(saw_failure, "the source failure never arrived");
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    CHECK(atomic_load(&s.calls) == k + 1, "source called %llu times, expected %" PRIu64,
          (unsigned long long)atomic_load(&s.calls), k + 1);
    check_stats_settled(pool, k + 1, k, 1, 0);
    CHECK_OK(pmap_free(pool));
}

/* An endless source is pulled only while there is room; close stops the pulling. */
static void close_stops_pulling(void)
{
    enum { CAP = 16, TAKE = 50 };
    struct src s;
    src_init(&s, UINT64_MAX, UINT64_MAX, 0);
    pmap_pool *pool = source_pool(&s, 2, CAP, true);
    pmap_result r;
    uint64_t n = 0;
    for (; n < TAKE; n++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == n, "index %" PRIu64, r.index);
        result_release(&r);
        /* Bounded: the feeder holds at most one pulled item beyond the window. */
        unsigned long long pulled = atomic_load(&s.produced);
        CHECK(pulled <= n + 1 + CAP + 1, "pulled %llu items with only %" PRIu64 " handed back",
              pulled, n + 1);
    }
    sleep_ms(20); /* the window refills, then the feeder must wait */
    unsigned long long pulled = atomic_load(&s.produced);
    CHECK(pulled <= TAKE + CAP + 1, "pulled %llu with %d handed back and capacity %d", pulled,
          TAKE, CAP);
    CHECK_OK(pmap_close(pool));
    CHECK_OK(pmap_close(pool)); /* idempotent */
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        CHECK(r.index == n, "after close: index %" PRIu64 ", expected %" PRIu64, r.index, n);
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        n++;
        result_release(&r);
    }
    CHECK_ST(st, PMAP_DONE);
    unsigned long long calls = atomic_load(&s.calls);
    uint64_t produced = atomic_load(&s.produced);
    CHECK(n == produced, "%" PRIu64 " handed back, %" PRIu64 " pulled", n, produced);
    sleep_ms(30);
    CHECK(atomic_load(&s.calls) == calls, "the source was called after close and DONE");
    check_stats_settled(pool, n, n, 0, 0);
    CHECK_OK(pmap_free(pool));
}

/* Cancel an endless source: items come back OK or CANCELLED, exactly once, then DONE. */
static void cancel_source(bool ordered)
{
    struct src s;
    src_init(&s, UINT64_MAX, UINT64_MAX, 0);
    s.delay_us = 50;
    pmap_pool *pool = source_pool(&s, 2, 32, ordered);
    enum { MAXN = 100000 };
    struct ledger ids;
    ledger_init(&ids, MAXN);
    pmap_result r;
    uint64_t n = 0, ok = 0, cancelled = 0;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered)
            CHECK(r.index == n, "index %" PRIu64 ", expected %" PRIu64, r.index, n);
        CHECK(r.item && ((struct item *)r.item)->id == r.index, "wrong item");
        ledger_mark(&ids, r.index);
        if (r.status == PMAP_ITEM_OK) {
            ok++;
        } else {
            CHECK(r.status == PMAP_ITEM_CANCELLED, "status %d", r.status);
            CHECK(n >= 20, "item cancelled before the cancel");
            CHECK(r.worker == PMAP_NO_WORKER, "cancelled item has worker %u", r.worker);
            CHECK(atomic_load(&((struct item *)r.item)->runs) == 0, "cancelled item ran");
            cancelled++;
        }
        n++;
        result_release(&r);
        if (n == 20)
            CHECK_OK(pmap_cancel(pool));
    }
    CHECK_ST(st, PMAP_DONE);
    uint64_t produced = atomic_load(&s.produced);
    CHECK(n == produced, "%" PRIu64 " handed back, %" PRIu64 " pulled", n, produced);
    for (uint64_t i = 0; i < n; i++)
        CHECK(atomic_load(&ids.counts[i]) == 1, "item %" PRIu64 " missing", i);
    ledger_destroy(&ids);
    unsigned long long calls = atomic_load(&s.calls);
    sleep_ms(20);
    CHECK(atomic_load(&s.calls) == calls, "the source was called after DONE");
    check_stats_settled(pool, n, ok, 0, cancelled);
    CHECK_OK(pmap_free(pool));
}

/* Free with an endless source never consumed: every pulled item is dropped exactly once. */
static atomic_ullong g_dropped;
static void drop_item(void *ctx, const pmap_result *r)
{
    (void)ctx;
    CHECK(r->item != NULL, "on_drop without an item");
    atomic_fetch_add(&g_dropped, 1);
    result_release(r);
}

static void free_endless(void)
{
    struct src s;
    src_init(&s, UINT64_MAX, UINT64_MAX, 0);
    pmap_options o = test_opts(work_basic, &s, 2, 16, true);
    o.source = source;
    o.on_drop = drop_item;
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        result_release(&r);
    }
    sleep_ms(10);
    CHECK_OK(pmap_free(pool));
    uint64_t produced = atomic_load(&s.produced);
    CHECK(atomic_load(&g_dropped) + 5 == produced, "dropped %llu + 5 taken, %" PRIu64 " pulled",
          (unsigned long long)atomic_load(&g_dropped), produced);
}

/* A live source, like requests arriving on a socket: after a fast warm-up (so the pool
 * measures its items as cheap), each further item becomes available only when the test
 * releases it, and the source blocks until then. */
struct live {
    pthread_mutex_t m;
    pthread_cond_t c;
    uint64_t released; /* ids below this may be handed out */
    bool end;          /* return 0 once nothing more is released */
    uint64_t next_id;
    uint64_t calls;
    bool blocked; /* inside a call, waiting for a release */
};

static int32_t live_source(void *ctx, void **out)
{
    struct live *l = ctx;
    pthread_mutex_lock(&l->m);
    l->calls++;
    while (l->next_id >= l->released && !l->end) {
        l->blocked = true;
        pthread_cond_broadcast(&l->c);
        pthread_cond_wait(&l->c, &l->m);
    }
    l->blocked = false;
    int32_t rc = 0;
    if (l->next_id < l->released) {
        *out = item_new(l->next_id++);
        rc = 1;
    }
    pthread_mutex_unlock(&l->m);
    return rc;
}

static void live_release(struct live *l, uint64_t n, bool end)
{
    pthread_mutex_lock(&l->m);
    l->released += n;
    l->end = l->end || end;
    pthread_cond_broadcast(&l->c);
    pthread_mutex_unlock(&l->m);
}

/* Wait until the source has handed out every released item and blocks for the next. */
static uint64_t live_wait_blocked(struct live *l)
{
    pthread_mutex_lock(&l->m);
    while (!(l->blocked && l->next_id == l->released))
        pthread_cond_wait(&l->c, &l->m);
    uint64_t calls = l->calls;
    pthread_mutex_unlock(&l->m);
    return calls;
}

static uint64_t live_calls(struct live *l)
{
    pthread_mutex_lock(&l->m);
    uint64_t c = l->calls;
    pthread_mutex_unlock(&l->m);
    return c;
}

enum { WARM = 3000, LIVE_WAIT_MS = 3000 };

static pmap_pool *live_pool(struct live *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->m, NULL);
    pthread_cond_init(&l->c, NULL);
    l->released = WARM;
    pmap_options o = test_opts(work_basic, l, 2, 64, true);
    o.source = live_source;
    pmap_pool *pool = test_pool(&o);
    pmap_result r;
    for (uint64_t i = 0; i < WARM; i++) {
        pmap_status st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
        CHECK(st == PMAP_OK,
              "warm-up: item %" PRIu64 " did not come back within %d ms (%s) although the "
              "source returned items up to %d and now waits for input: the pool holds "
              "pulled items while the source waits for the next one",
              i, LIVE_WAIT_MS, pmap_status_str(st), WARM - 1);
        CHECK(r.index == i, "index %" PRIu64, r.index);
        result_release(&r);
    }
    live_wait_blocked(l);
    return pool;
}

/* Each released item comes back without waiting for more input. */
static void live_latency(void)
{
    struct live l;
    pmap_pool *pool = live_pool(&l);
    pmap_result r;
    for (uint64_t i = WARM; i < WARM + 5; i++) {
        live_release(&l, 1, false);
        pmap_status st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
        CHECK(st == PMAP_OK,
              "item %" PRIu64 " was returned by the source but did not come back within %d ms "
              "(%s): the pool holds pulled items while the source waits for the next one",
              i, LIVE_WAIT_MS, pmap_status_str(st));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64 " status %d", r.index,
              r.status);
        result_release(&r);
    }
    live_release(&l, 0, true);
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
}

/* Cancel with the source blocked in a call: DONE waits for that call only; the item it
 * returns comes back cancelled; the source is not called again. */
static void live_cancel(void)
{
    struct live l;
    pmap_pool *pool = live_pool(&l);
    pmap_result r;
    live_release(&l, 1, false);
    live_wait_blocked(&l); /* item WARM was returned; the next call is blocked */
    pmap_status st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_OK, "item %d, returned by the source, did not come back (%s)", WARM,
          pmap_status_str(st));
    CHECK(r.index == WARM && r.status == PMAP_ITEM_OK, "index %" PRIu64 " status %d", r.index,
          r.status);
    result_release(&r);
    CHECK_OK(pmap_cancel(pool));
    CHECK_ST(pmap_next(pool, &r, 20 * MS), PMAP_TIMEOUT); /* a source call is in progress */
    uint64_t calls = live_calls(&l);
    live_release(&l, 1, false); /* the blocked call returns item WARM + 1 */
    st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_OK, "the item returned by the source call in progress at the cancel did "
                         "not come back (%s)",
          pmap_status_str(st));
    CHECK(r.index == WARM + 1 && r.status == PMAP_ITEM_CANCELLED,
          "index %" PRIu64 " status %d, expected %d cancelled", r.index, r.status, WARM + 1);
    result_release(&r);
    st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_DONE, "after cancel, the source call in progress returned, yet no DONE "
                           "within %d ms (%s); source calls %" PRIu64 " -> %" PRIu64,
          LIVE_WAIT_MS, pmap_status_str(st), calls, live_calls(&l));
    sleep_ms(20);
    CHECK(live_calls(&l) == calls, "the source was called again after the cancel");
    CHECK_OK(pmap_free(pool));
}

static uint64_t live_handed_out(struct live *l)
{
    pthread_mutex_lock(&l->m);
    uint64_t n = l->next_id;
    pthread_mutex_unlock(&l->m);
    return n;
}

/* A consumer that takes one result and then waits for the source to be called again (a
 * feedback loop: its next input depends on that call) is not left waiting while there is
 * room, even though the pool hands room to the feeder in batches while items are cheap. */
static void live_room_after_one_result(void)
{
    enum { CAP = 64 }; /* live_pool's capacity */
    struct live l;
    pmap_pool *pool = live_pool(&l);
    pmap_result r;
    live_release(&l, CAP + 1, false);
    uint64_t t0 = now_ns();
    while (live_handed_out(&l) < WARM + CAP && ms_since(t0) < LIVE_WAIT_MS)
        sleep_ms(1);
    CHECK(live_handed_out(&l) == WARM + CAP, "the source handed out %" PRIu64 " items, not a "
                                             "full window of %d",
          live_handed_out(&l) - WARM, CAP);
    sleep_ms(50); /* the window is full: the feeder waits for room, the items finish */
    CHECK(live_handed_out(&l) == WARM + CAP, "the source was called beyond the window");
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == WARM, "index %" PRIu64, r.index);
    result_release(&r);
    t0 = now_ns();
    while (live_handed_out(&l) == WARM + CAP && ms_since(t0) < LIVE_WAIT_MS)
        sleep_ms(1);
    CHECK(live_handed_out(&l) == WARM + CAP + 1,
          "one slot was free for %d ms, yet the source was not called for the item waiting "
          "in it: the feeder waits for a batch of room the consumer may never free",
          LIVE_WAIT_MS);
    live_release(&l, 0, true);
    for (uint64_t i = WARM + 1; i < WARM + CAP + 1; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i && r.status == PMAP_ITEM_OK, "index %" PRIu64 " status %d", r.index,
              r.status);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
}

/* Close with the source blocked in a call: the feeder stops pulling after that call. */
static void live_close(void)
{
    struct live l;
    pmap_pool *pool = live_pool(&l);
    pmap_result r;
    live_release(&l, 1, false);
    live_wait_blocked(&l);
    pmap_status st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_OK, "item %d, returned by the source, did not come back (%s)", WARM,
          pmap_status_str(st));
    result_release(&r);
    CHECK_OK(pmap_close(pool));
    uint64_t calls = live_calls(&l);
    live_release(&l, 1, false);
    /* The item of the call in progress is accepted (it was pulled) and comes back. */
    st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_OK, "the item pulled by the call in progress at close did not come back "
                         "(%s)",
          pmap_status_str(st));
    CHECK(r.index == WARM + 1, "index %" PRIu64, r.index);
    result_release(&r);
    st = pmap_next(pool, &r, LIVE_WAIT_MS * MS);
    CHECK(st == PMAP_DONE, "after close no DONE within %d ms (%s); source calls %" PRIu64
                           " -> %" PRIu64,
          LIVE_WAIT_MS, pmap_status_str(st), calls, live_calls(&l));
    CHECK(live_calls(&l) == calls, "the source was called again after close");
    CHECK_OK(pmap_free(pool));
}

int main(void)
{
    watchdog(30);
    all_items(true, 16);
    all_items(false, 16);
    all_items(true, 1);
    all_items(true, 0);
    source_error(37, -5, true);
    source_error(37, -5, false);
    source_error(0, -1, true);
    source_error(10, 7, true); /* any value but 0 and 1 is an error */
    source_error(3, INT32_MIN, true);
    close_stops_pulling();
    cancel_source(true);
    cancel_source(false);
    free_endless();
    live_latency();
    live_cancel();
    live_close();
    live_room_after_one_result();
    check_all_released();
    printf("source: ok\n");
    return 0;
}
