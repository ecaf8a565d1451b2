/*
 * soak: the seeded fault-injection soak of the pmap C API (RELIABILITY.md, guarantee 1-3).
 *
 * Runs pools back to back until at least --items items were accepted over at least --runs
 * runs. Each run draws from the seed: 1-8 workers; capacity from {1, 2, 3, 4, 8, 16, 64,
 * 256, 1024, 0 = default}; ordered or not; fail_fast or not; 1-3 producer threads (or a
 * `source` callback, 1 run in 8) and 1-3 consumer threads, each mixing single and batch
 * calls with random timeouts (0, 100 us, 2 ms, forever); item costs with a heavy tail (spin
 * of a few ns to 3 us, sleeps of 20-200 us, 1 ms, and 10 ms that poll pmap_is_cancelled);
 * random item failures (0, 0.1 %, 1 % or 10 %); and how the run ends: drained after
 * pmap_close, pmap_close early, pmap_cancel (from the control thread after a random delay,
 * from a consumer after a random number of results, or from inside a work callback), or
 * pmap_free with items outstanding (after a random number of results).
 *
 * Asserted, per run (a failure prints the seed, the run's seed and its configuration):
 *  - exactly once: every accepted item comes back exactly once, through pmap_next /
 *    pmap_next_many or on_drop; every refused item is never seen by any callback; every
 *    index in [0, accepted) is handed back exactly once; every item and value allocated is
 *    freed exactly once (counted);
 *  - an item reported PMAP_ITEM_CANCELLED never ran (its work count is 0 when it comes back
 *    and still 0 after pmap_free joined every thread), has worker PMAP_NO_WORKER and no
 *    value; OK / FAILED items ran exactly once on a worker < workers, with the planned value
 *    or error code;
 *  - order: an ordered pool hands each consumer strictly increasing indices, and a single
 *    consumer exactly 0, 1, 2 ...; with one producer (or a source) index == submission order;
 *  - bounded: in flight never above capacity (see below);
 *  - pmap_stats_get while pools run: in_flight <= capacity and succeeded + failed +
 *    cancelled <= submitted (violations are counted; the soak fails at the end with the
 *    count and the first one, so every other check still runs to the end);
 *  - after pmap_cancel returns, at most `workers` work calls start;
 *  - every pmap_free returns within 2 s (times PMAP_WATCHDOG_SCALE), runs worker_exit once per
 *    worker_init, on the worker's own thread;
 *  - a drained run's stats add up (submitted = accepted, succeeded/failed/cancelled match
 *    what came back, in_flight 0), DONE repeats, and without cancel every item got its plan;
 *  - a run never hangs: a heartbeat watchdog ends the process (status 3) after 60 s.
 *
 * The in-flight check. True in-flight at time t is accepted(t) - handed_back(t). The driver
 * keeps a LOWER bound of it: `acc` is incremented only after pmap_submit* returned (or the
 * source callback is about to return an item: the feeder reserves its slot before calling
 * the source), so acc <= accepted at every instant; `hb` is incremented by `max` BEFORE
 * pmap_next* is called and decreased by (max - got) after, so hb >= handed_back. `acc` only
 * grows, so reading acc and then hb gives acc(t1) - hb(t2) <= accepted(t2) - handed_back(t2).
 * Asserting this lower bound <= capacity can never fail falsely; it fails when the pool
 * really held more than capacity items while no consumer call was in progress. (The upper
 * bound you get by counting before submit overshoots by design whenever a producer is
 * blocked on a full pool, so asserting it would be wrong.) The summary reports the largest
 * lower bound seen and how many runs reached exactly `capacity`, which shows the check bites.
 *
 * Modes: --signals (SIGALRM every 100 us for the whole soak, and every pool thread's SigBlk
 * is checked in every run); --canary (one run whose work callback increments a plain global:
 * a deliberate data race that ThreadSanitizer must report); --selftest-ledger=lost|dup (the
 * driver deliberately loses / double-counts one item: the ledger must fail, exit 1).
 *
 * Usage: soak [--items N] [--runs N] [--seed S] [--run-seed S] [--max-run-items N]
 *             [--max-producers N] [--max-consumers N] [--max-workers N]
 *             [--time-limit SECONDS] [--signals] [--canary] [--no-source] [--verbose]
 * The seed also comes from PMAP_SOAK_SEED. Prints one "soak summary:" line at the end.
 */
#include "rel.h"

#include <sys/time.h>

/* ------------------------------------------------------------------------------------ */
/* Configuration                                                                         */
/* ------------------------------------------------------------------------------------ */

static struct {
    uint64_t items, runs, seed, run_seed, max_run_items, time_limit;
    int max_producers, max_consumers, max_workers;
    bool signals, canary, verbose, has_run_seed, no_source;
    int selftest; /* 0 none, 1 lost, 2 dup */
} g_cfg = {
    .items = 10000000,
    .runs = 1000,
    .max_run_items = 40000,
    .time_limit = 1800,
    .max_producers = 3,
    .max_consumers = 3,
    .max_workers = 8,
};

enum end_mode { END_DRAIN, END_CLOSE_EARLY, END_CANCEL, END_FREE, END_MODES };
static const char *const END_NAMES[] = {"drain", "close-early", "cancel", "free-early"};
enum where { BY_CONTROL, BY_CONSUMER, BY_WORK };
static const char *const WHERE_NAMES[] = {"control", "consumer", "work"};

enum cost_kind { COST_TINY, COST_SPIN, COST_SLEEP_US, COST_SLEEP_MS, COST_LONG };

#define ITEM_MAGIC 0x50414B31u
#define VALUE_MAGIC 0x50414B32u
#define WSTATE_MAGIC 0x50414B33u
#define COOP_CODE 0x0C00 /* a long item that stopped early because the pool was cancelled */
#define SOURCE_FAIL_CODE (-77)

struct sitem {
    uint32_t magic;
    int32_t fail_code; /* work returns this when non-zero */
    uint64_t id;
    uint32_t cost;
    uint8_t kind;
};

struct svalue {
    uint32_t magic;
    uint64_t id;
    uint64_t check;
};

struct wstate {
    uint32_t magic;
    uint32_t worker;
    pthread_t thread;
};

struct run {
    /* plan */
    uint64_t seed, n;
    uint32_t workers, capacity, bound;
    bool ordered, fail_fast, source_mode, finite; /* finite: no FOREVER waits */
    int producers, consumers;
    uint32_t fail_per_mille;
    enum end_mode end;
    enum where where;
    uint64_t trigger;         /* results handed back (or item id for BY_WORK) */
    uint64_t cancel_delay_us; /* BY_CONTROL */
    uint64_t source_fail_at;  /* source mode: the source fails at this id (UINT64_MAX: no) */

    pmap_pool *_Atomic pool; /* published after pmap_new returns; see pool_of */
    pthread_t control;

    /* per id / per index ledgers */
    atomic_uchar *returned, *worked, *accepted, *refused, *index_seen;
    uint8_t *status;

    atomic_ullong next_id;      /* ids claimed by producers / the source */
    atomic_ullong acc;          /* confirmed accepted (lower side), includes a source failure */
    atomic_ullong hb;           /* handed back, upper side (pre-counted) */
    atomic_ullong handed_back;  /* exact count of results taken by pmap_next* */
    atomic_ullong dropped;      /* on_drop calls */
    atomic_ullong max_lb;       /* largest lower bound of in-flight seen */
    atomic_ullong max_stats_in_flight;
    atomic_ullong n_ok, n_failed, n_cancelled, n_coop, n_source_failed;
    atomic_int triggered;       /* the end action was taken */
    atomic_int stop;            /* END_FREE: producers and consumers leave */
    atomic_int cancel_returned; /* an explicit pmap_cancel has returned */
    atomic_ullong started_after_cancel;
    atomic_int running, max_running;
    atomic_int inits, exits, exit_wrong_thread;
    atomic_int source_done, source_failed_made;
    atomic_int explicit_cancels, early_closes;
    atomic_int producers_left, consumers_left;
};

/* Totals over the whole soak. */
static struct {
    uint64_t runs, accepted, ok, failed, cancelled, coop, dropped, source_failed, refused;
    uint64_t failures_planned_run; /* items whose planned failure ran */
    uint64_t explicit_cancels, fail_fast_cancels, early_frees, early_closes, drains;
    uint64_t max_lb, runs_at_capacity, max_stats_in_flight, max_started_after_cancel;
    uint64_t started_after_cancel, sigblk_checks, threads_checked;
    uint64_t by_where[3];
    double max_free_ms;
} g_tot;

static atomic_ullong g_items_made, g_items_freed, g_values_made, g_values_freed;
static atomic_ullong g_signals, g_signals_on_pool;
static _Thread_local int tls_pool_thread;
static unsigned long long g_canary_counter; /* --canary: the deliberate race */

/* What is running now, for failure messages and the heartbeat watchdog. */
static char g_ctx[512];
static atomic_ullong g_run_started_ns;
static atomic_int g_in_run;
static atomic_int g_finished; /* tells the heartbeat thread to leave */

#define RCHECK(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "soak: FAILED: seed %" PRIu64 ", %s\n", g_cfg.seed, g_ctx);    \
            check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                          \
        }                                                                                  \
    } while (0)

#define RCHECK_ST(call, expected)                                                          \
    do {                                                                                   \
        pmap_status got_ = (call);                                                         \
        RCHECK(got_ == (expected), "%s returned %d (%s), expected %d", #call, (int)got_,   \
               pmap_status_str(got_), (int)(expected));                                    \
    } while (0)

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ (b * 0x9E3779B97F4A7C15ull);
    return rng_next(&s);
}

/* The pool, once pmap_new has returned: the feeder may call the source (and so work may
 * run) before that. */
static pmap_pool *pool_of(struct run *r)
{
    pmap_pool *p;
    while ((p = atomic_load(&r->pool)) == NULL)
        sleep_us(20);
    return p;
}

/* ------------------------------------------------------------------------------------ */
/* Items                                                                                 */
/* ------------------------------------------------------------------------------------ */

static struct sitem *item_make(struct run *r, uint64_t id)
{
    uint64_t h = mix(r->seed, id);
    struct sitem *it = malloc(sizeof *it);
    RCHECK(it != NULL, "out of memory");
    it->magic = ITEM_MAGIC;
    it->id = id;
    uint32_t u = (uint32_t)(h % 100000);
    if (u < 90000) {
        it->kind = COST_TINY;
        it->cost = (uint32_t)((h >> 20) % 64);
    } else if (u < 99000) {
        it->kind = COST_SPIN;
        it->cost = 500 + (uint32_t)((h >> 20) % 2500);
    } else if (u < 99900) {
        it->kind = COST_SLEEP_US;
        it->cost = 20 + (uint32_t)((h >> 20) % 180);
    } else if (u < 99990) {
        it->kind = COST_SLEEP_MS;
        it->cost = 1;
    } else {
        it->kind = COST_LONG;
        it->cost = 10;
    }
    it->fail_code = 0;
    if ((h >> 40) % 1000 < r->fail_per_mille)
        it->fail_code = 1 + (int32_t)((h >> 50) % 1000);
    atomic_fetch_add_explicit(&g_items_made, 1, memory_order_relaxed);
    return it;
}

static void item_release(struct sitem *it)
{
    RCHECK(it->magic == ITEM_MAGIC, "item %p released twice or corrupt", (void *)it);
    it->magic = DEAD;
    atomic_fetch_add_explicit(&g_items_freed, 1, memory_order_relaxed);
    free(it);
}

static uint64_t value_check(const struct run *r, uint64_t id) { return mix(id, r->seed) | 1; }

/* ------------------------------------------------------------------------------------ */
/* Callbacks                                                                             */
/* ------------------------------------------------------------------------------------ */

static void *soak_init(void *ctx, uint32_t worker)
{
    struct run *r = ctx;
    tls_pool_thread = 1;
    struct wstate *w = malloc(sizeof *w);
    RCHECK(w != NULL, "out of memory");
    w->magic = WSTATE_MAGIC;
    w->worker = worker;
    w->thread = pthread_self();
    atomic_fetch_add(&r->inits, 1);
    return w;
}

static void soak_exit(void *ctx, uint32_t worker, void *state)
{
    struct run *r = ctx;
    struct wstate *w = state;
    RCHECK(w != NULL && w->magic == WSTATE_MAGIC, "worker_exit got a bad state %p", state);
    RCHECK(w->worker == worker, "worker_exit(%u) got worker %u's state", worker, w->worker);
    if (!pthread_equal(w->thread, pthread_self()))
        atomic_fetch_add(&r->exit_wrong_thread, 1);
    w->magic = DEAD;
    free(w);
    atomic_fetch_add(&r->exits, 1);
}

static void note_cancel_returned(struct run *r)
{
    atomic_store(&r->cancel_returned, 1);
    atomic_fetch_add(&r->explicit_cancels, 1);
}

/* Inconsistent pmap_stats seen while pools ran (see the consumer). */
static atomic_ullong g_stats_violations, g_stats_samples;
static atomic_flag g_stats_first_taken = ATOMIC_FLAG_INIT;
static char g_stats_first[768];

static void stats_violation(struct run *r, const pmap_stats *s)
{
    (void)r;
    atomic_fetch_add(&g_stats_violations, 1);
    if (!atomic_flag_test_and_set(&g_stats_first_taken))
        snprintf(g_stats_first, sizeof g_stats_first,
                 "submitted %" PRIu64 ", succeeded %" PRIu64 ", failed %" PRIu64
                 ", cancelled %" PRIu64 ", in_flight %" PRIu64 " (capacity %u) in %s",
                 s->submitted, s->succeeded, s->failed, s->cancelled, s->in_flight, r->bound,
                 g_ctx);
}

static void spin(uint64_t n, uint64_t seed)
{
    volatile uint64_t acc = seed;
    for (uint64_t i = 0; i < n; i++)
        acc = acc * 6364136223846793005ull + 1442695040888963407ull;
}

static int32_t soak_work(void *ctx, void *state, void *item, void **result)
{
    struct run *r = ctx;
    struct wstate *w = state;
    struct sitem *it = item;
    /* Count the start before anything else: a start after pmap_cancel returned counts. */
    if (atomic_load(&r->cancel_returned))
        atomic_fetch_add(&r->started_after_cancel, 1);
    RCHECK(w != NULL && w->magic == WSTATE_MAGIC, "work got a bad worker state %p", state);
    RCHECK(pthread_equal(w->thread, pthread_self()), "work ran with another thread's state");
    RCHECK(it != NULL && it->magic == ITEM_MAGIC, "work got a bad item %p", item);
    RCHECK(it->id < r->n, "work got id %" PRIu64, it->id);
    unsigned prev = atomic_fetch_add(&r->worked[it->id], 1);
    RCHECK(prev == 0, "item %" PRIu64 " passed to work %u times", it->id, prev + 1);
    RCHECK(!atomic_load(&r->refused[it->id]), "work got item %" PRIu64 " that was refused",
           it->id);
    int running = atomic_fetch_add(&r->running, 1) + 1;
    RCHECK(running <= (int)r->workers, "%d work calls at once with %u workers", running,
           r->workers);
    if (running > atomic_load(&r->max_running))
        atomic_store(&r->max_running, running);
    if (g_cfg.canary)
        g_canary_counter++; /* deliberately racy: ThreadSanitizer must report this */

    int32_t code = it->fail_code;
    switch (it->kind) {
    case COST_TINY:
    case COST_SPIN:
        spin(it->cost, it->id);
        break;
    case COST_SLEEP_US:
        sleep_us(it->cost);
        break;
    case COST_SLEEP_MS:
        sleep_ms(it->cost);
        break;
    default: /* COST_LONG: 10 x 1 ms, stopping early once the pool is cancelled */
        for (uint32_t i = 0; i < it->cost; i++) {
            if (pmap_is_cancelled(pool_of(r))) {
                code = COOP_CODE;
                break;
            }
            sleep_ms(1);
        }
        break;
    }
    if (r->where == BY_WORK && it->id == r->trigger && !atomic_exchange(&r->triggered, 1)) {
        if (r->end == END_CANCEL) {
            RCHECK_ST(pmap_cancel(pool_of(r)), PMAP_OK);
            RCHECK(pmap_is_cancelled(pool_of(r)), "not cancelled after pmap_cancel in work");
            note_cancel_returned(r);
        } else if (r->end == END_CLOSE_EARLY) {
            RCHECK_ST(pmap_close(pool_of(r)), PMAP_OK);
            atomic_fetch_add(&r->early_closes, 1);
        }
    }
    atomic_fetch_sub(&r->running, 1);
    if (code != 0) {
        *result = (void *)(uintptr_t)0x5A5A; /* must be ignored: value stays NULL */
        return code;
    }
    struct svalue *v = malloc(sizeof *v);
    RCHECK(v != NULL, "out of memory");
    v->magic = VALUE_MAGIC;
    v->id = it->id;
    v->check = value_check(r, it->id);
    atomic_fetch_add_explicit(&g_values_made, 1, memory_order_relaxed);
    *result = v;
    return 0;
}

static void sample_in_flight(struct run *r)
{
    /* acc first, then hb: see the header comment. */
    unsigned long long a = atomic_load(&r->acc);
    unsigned long long h = atomic_load(&r->hb);
    if (a > h) {
        unsigned long long lb = a - h;
        RCHECK(lb <= r->bound,
               "in flight is at least %llu (accepted >= %llu, handed back <= %llu) with "
               "capacity %u",
               lb, a, h, r->bound);
        rel_atomic_max(&r->max_lb, lb);
    }
}

static int32_t soak_source(void *ctx, void **out)
{
    struct run *r = ctx;
    tls_pool_thread = 1;
    (void)pool_of(r); /* items it returns may reach work, which uses the pool */
    RCHECK(!atomic_load(&r->source_done), "source called again after it ended the input");
    uint64_t id = atomic_fetch_add(&r->next_id, 1);
    if (id == r->source_fail_at) {
        atomic_store(&r->source_done, 1);
        atomic_store(&r->source_failed_made, 1);
        atomic_fetch_add(&r->acc, 1); /* its result is in flight like an item */
        return SOURCE_FAIL_CODE;
    }
    if (id >= r->n) {
        atomic_store(&r->source_done, 1);
        return 0;
    }
    struct sitem *it = item_make(r, id);
    atomic_store(&r->accepted[id], 1);
    atomic_fetch_add(&r->acc, 1);
    sample_in_flight(r);
    *out = it;
    return 1;
}

/* Account for one handed-back result and free what it carries. */
static void settle(struct run *r, const pmap_result *res, bool via_drop)
{
    RCHECK(res->index < r->n + 1, "index %" PRIu64 " out of range", res->index);
    unsigned seen = atomic_fetch_add(&r->index_seen[res->index], 1);
    RCHECK(seen == 0, "index %" PRIu64 " handed back %u times", res->index, seen + 1);
    if (res->status == PMAP_ITEM_SOURCE_FAILED) {
        RCHECK(r->source_mode, "PMAP_ITEM_SOURCE_FAILED without a source");
        RCHECK(res->item == NULL && res->value == NULL, "source failure with item/value");
        RCHECK(res->error == SOURCE_FAIL_CODE, "source failure code %d", res->error);
        RCHECK(res->index == r->source_fail_at, "source failure at index %" PRIu64
                                                ", expected %" PRIu64,
               res->index, r->source_fail_at);
        atomic_fetch_add(&r->n_source_failed, 1);
        return;
    }
    struct sitem *it = res->item;
    RCHECK(it != NULL && it->magic == ITEM_MAGIC, "result %" PRIu64 " has a bad item %p",
           res->index, (void *)it);
    uint64_t id = it->id;
    RCHECK(id < r->n, "item id %" PRIu64 " out of range", id);
    if (g_cfg.selftest == 1 && id == r->n / 2) {
        /* --selftest-ledger=lost: forget this item. The ledger must notice. */
    } else {
        unsigned prev = atomic_fetch_add(&r->returned[id], 1);
        RCHECK(prev == 0, "item %" PRIu64 " handed back %u times", id, prev + 1);
        if (g_cfg.selftest == 2 && id == r->n / 2)
            atomic_fetch_add(&r->returned[id], 1); /* --selftest-ledger=dup */
    }
    r->status[id] = (uint8_t)res->status;
    if (r->source_mode || r->producers == 1)
        RCHECK(res->index == id, "item %" PRIu64 " got index %" PRIu64
                                 " (one producer: submission order)",
               id, res->index);
    unsigned worked = atomic_load(&r->worked[id]);
    switch (res->status) {
    case PMAP_ITEM_OK: {
        RCHECK(it->fail_code == 0, "item %" PRIu64 " planned to fail came back OK", id);
        RCHECK(res->error == 0, "OK item with error %d", res->error);
        RCHECK(res->worker < r->workers, "OK item on worker %u", res->worker);
        RCHECK(worked == 1, "OK item %" PRIu64 " ran %u times", id, worked);
        struct svalue *v = res->value;
        RCHECK(v != NULL && v->magic == VALUE_MAGIC && v->id == id &&
                   v->check == value_check(r, id),
               "item %" PRIu64 " has a wrong value %p", id, (void *)v);
        v->magic = DEAD;
        free(v);
        atomic_fetch_add_explicit(&g_values_freed, 1, memory_order_relaxed);
        atomic_fetch_add(&r->n_ok, 1);
        break;
    }
    case PMAP_ITEM_FAILED:
        RCHECK(res->value == NULL, "failed item %" PRIu64 " has a value", id);
        RCHECK(res->worker < r->workers, "failed item on worker %u", res->worker);
        RCHECK(worked == 1, "failed item %" PRIu64 " ran %u times", id, worked);
        if (res->error == COOP_CODE && it->kind == COST_LONG) {
            atomic_fetch_add(&r->n_coop, 1);
        } else {
            RCHECK(it->fail_code != 0 && res->error == it->fail_code,
                   "item %" PRIu64 ": error %d, planned %d", id, res->error, it->fail_code);
        }
        atomic_fetch_add(&r->n_failed, 1);
        break;
    case PMAP_ITEM_CANCELLED:
        RCHECK(res->value == NULL && res->error == 0, "cancelled item with value/error");
        RCHECK(res->worker == PMAP_NO_WORKER, "cancelled item %" PRIu64 " has worker %u", id,
               res->worker);
        RCHECK(worked == 0, "item %" PRIu64 " reported cancelled but work ran on it", id);
        if (!via_drop)
            RCHECK(pmap_is_cancelled(pool_of(r)), "a cancelled item from a pool not cancelled");
        atomic_fetch_add(&r->n_cancelled, 1);
        break;
    default:
        RCHECK(false, "item %" PRIu64 ": unknown status %d", id, res->status);
    }
    item_release(it);
}

static void soak_on_drop(void *ctx, const pmap_result *res)
{
    struct run *r = ctx;
    RCHECK(pthread_equal(pthread_self(), r->control), "on_drop off the freeing thread");
    settle(r, res, true);
    atomic_fetch_add(&r->dropped, 1);
}

/* ------------------------------------------------------------------------------------ */
/* Producers and consumers                                                               */
/* ------------------------------------------------------------------------------------ */

static int64_t pick_timeout(uint64_t *rng, bool finite)
{
    switch (rng_next(rng) % (finite ? 3 : 4)) {
    case 0: return NOWAIT;
    case 1: return 100 * US;
    case 2: return 2 * MS;
    default: return FOREVER;
    }
}

struct thread_arg {
    struct run *r;
    int idx;
};

static void *producer_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct run *r = ta->r;
    uint64_t rng = mix(r->seed, 1000 + (uint64_t)ta->idx);
    uint64_t max_batch = 1 + rng_next(&rng) % 16;
    struct sitem *items[16];
    bool done = false;
    while (!done && !atomic_load(&r->stop)) {
        uint64_t k = 1 + rng_next(&rng) % max_batch;
        uint64_t first = atomic_fetch_add(&r->next_id, k);
        if (first >= r->n)
            break;
        if (first + k > r->n)
            k = r->n - first;
        for (uint64_t i = 0; i < k; i++)
            items[i] = item_make(r, first + i);
        uint64_t off = 0;
        while (off < k) {
            if (atomic_load(&r->stop))
                break;
            int64_t timeout = pick_timeout(&rng, r->finite);
            size_t acc = 0;
            pmap_status st;
            if (k - off == 1 && (rng_next(&rng) & 1)) {
                st = pmap_submit(pool_of(r), items[off], timeout);
                acc = st == PMAP_OK;
            } else {
                acc = 12345;
                st = pmap_submit_many(pool_of(r), (void *const *)&items[off], k - off, &acc,
                                      timeout);
                RCHECK(acc <= k - off, "submit_many accepted %zu of %" PRIu64, acc, k - off);
                RCHECK((st == PMAP_OK) == (acc == k - off),
                       "submit_many: status %d with %zu of %" PRIu64 " accepted", st, acc,
                       k - off);
            }
            /* Never touch an accepted item again: a consumer may have freed it already. */
            for (size_t i = 0; i < acc; i++)
                atomic_store(&r->accepted[first + off + i], 1);
            atomic_fetch_add(&r->acc, acc);
            sample_in_flight(r);
            off += acc;
            if (st == PMAP_OK)
                break;
            if (st == PMAP_TIMEOUT) {
                RCHECK(timeout >= 0, "a blocking submit timed out");
                continue;
            }
            RCHECK(st == PMAP_CLOSED || st == PMAP_CANCELLED, "submit returned %d (%s)", st,
                   pmap_status_str(st));
            if (st == PMAP_CANCELLED)
                RCHECK(pmap_is_cancelled(pool_of(r)), "PMAP_CANCELLED from a live pool");
            done = true;
            break;
        }
        for (uint64_t i = off; i < k; i++) { /* refused: still ours */
            atomic_store(&r->refused[first + i], 1);
            item_release(items[i]);
        }
    }
    atomic_fetch_sub(&r->producers_left, 1);
    return NULL;
}

static void take_end_action(struct run *r)
{
    switch (r->end) {
    case END_CANCEL:
        RCHECK_ST(pmap_cancel(pool_of(r)), PMAP_OK);
        note_cancel_returned(r);
        break;
    case END_CLOSE_EARLY:
        RCHECK_ST(pmap_close(pool_of(r)), PMAP_OK);
        atomic_fetch_add(&r->early_closes, 1);
        break;
    case END_FREE:
        atomic_store(&r->stop, 1);
        break;
    default:
        break;
    }
}

static void *consumer_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct run *r = ta->r;
    uint64_t rng = mix(r->seed, 2000 + (uint64_t)ta->idx);
    uint64_t max_batch = 1 + rng_next(&rng) % 16;
    pmap_result res[16];
    bool have_last = false;
    uint64_t last = 0, since_stats = 0;
    for (;;) {
        if (r->finite && atomic_load(&r->stop))
            break;
        size_t max = (size_t)(1 + rng_next(&rng) % max_batch);
        bool many = max > 1 || (rng_next(&rng) & 1);
        int64_t timeout = pick_timeout(&rng, r->finite);
        size_t got = 0;
        atomic_fetch_add(&r->hb, many ? max : 1);
        pmap_status st;
        if (many) {
            got = 12345;
            st = pmap_next_many(pool_of(r), res, max, &got, timeout);
            RCHECK(st == PMAP_OK ? (got >= 1 && got <= max) : got == 0,
                   "next_many: status %d, got %zu of max %zu", st, got, max);
            atomic_fetch_sub(&r->hb, max - got);
        } else {
            st = pmap_next(pool_of(r), &res[0], timeout);
            got = st == PMAP_OK;
            atomic_fetch_sub(&r->hb, 1 - got);
        }
        if (st == PMAP_TIMEOUT) {
            RCHECK(timeout >= 0, "a blocking next timed out");
            continue;
        }
        if (st == PMAP_DONE) {
            pmap_result extra;
            RCHECK_ST(pmap_next(pool_of(r), &extra, NOWAIT), PMAP_DONE);
            break;
        }
        RCHECK(st == PMAP_OK, "next returned %d (%s)", st, pmap_status_str(st));
        for (size_t i = 0; i < got; i++) {
            if (r->ordered) {
                if (r->consumers == 1)
                    RCHECK(res[i].index == (have_last ? last + 1 : 0),
                           "ordered: index %" PRIu64 " after %" PRIu64, res[i].index,
                           have_last ? last : UINT64_MAX);
                else
                    RCHECK(!have_last || res[i].index > last,
                           "ordered: consumer got index %" PRIu64 " after %" PRIu64,
                           res[i].index, last);
            }
            have_last = true;
            last = res[i].index;
            settle(r, &res[i], false);
        }
        uint64_t hb = atomic_fetch_add(&r->handed_back, got) + got;
        if (r->where == BY_CONSUMER && hb >= r->trigger && !atomic_exchange(&r->triggered, 1))
            take_end_action(r);
        since_stats += got;
        if (since_stats >= 64) {
            since_stats = 0;
            pmap_stats s;
            RCHECK_ST(pmap_stats_get(pool_of(r), &s), PMAP_OK);
            atomic_fetch_add(&g_stats_samples, 1);
            /* Stats taken while the pool runs must be consistent with each other. A
             * violation is counted and reported at the end (the soak then fails), so one
             * run shows how often it happens and the ledger checks still run to the end. */
            if (s.in_flight > r->bound || s.succeeded + s.failed + s.cancelled > s.submitted)
                stats_violation(r, &s);
            RCHECK(s.workers == r->workers, "stats.workers %u", s.workers);
            if (s.in_flight <= r->bound)
                rel_atomic_max(&r->max_stats_in_flight, s.in_flight);
        }
    }
    atomic_fetch_sub(&r->consumers_left, 1);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Signal mask checks                                                                    */
/* ------------------------------------------------------------------------------------ */

static const int ASYNC_SIGNALS[] = {SIGALRM, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
                                    SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGWINCH};

/* Every pmap thread of this run's pool blocks the asynchronous signals. */
static void check_sigblk(struct run *r)
{
    while (atomic_load(&r->inits) < (int)r->workers) /* each worker has named itself */
        sleep_us(50);
    struct task_info t[512];
    int n = list_tasks(t, 512), found = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(t[i].comm, "pmap-", 5) != 0)
            continue;
        uint64_t blk = 0;
        if (!task_sigblk(t[i].tid, &blk))
            continue; /* exited or exiting meanwhile */
        found++;
        for (size_t k = 0; k < sizeof ASYNC_SIGNALS / sizeof ASYNC_SIGNALS[0]; k++)
            RCHECK(blk & (1ull << (ASYNC_SIGNALS[k] - 1)),
                   "thread %s (tid %d) does not block %s (SigBlk %016" PRIx64 ")", t[i].comm,
                   t[i].tid, strsignal(ASYNC_SIGNALS[k]), blk);
    }
    RCHECK(found >= (int)r->workers, "found %d pmap threads, expected at least %u", found,
           r->workers);
    g_tot.sigblk_checks++;
    g_tot.threads_checked += (uint64_t)found;
}

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&g_signals, 1, memory_order_relaxed);
    if (tls_pool_thread)
        atomic_fetch_add_explicit(&g_signals_on_pool, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------ */
/* One run                                                                               */
/* ------------------------------------------------------------------------------------ */

static void plan_run(struct run *r, uint64_t seed, uint64_t mean_items)
{
    static const uint32_t CAPS[] = {1, 1, 2, 3, 4, 8, 16, 64, 256, 1024, 0};
    uint64_t s = seed;
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->workers = 1 + (uint32_t)(rng_next(&s) % (uint64_t)g_cfg.max_workers);
    r->capacity = CAPS[rng_next(&s) % (sizeof CAPS / sizeof CAPS[0])];
    /* capacity 0: the default documented in pmap.h, max(4096, 256 x workers). */
    r->bound = r->capacity ? r->capacity
                           : (256 * r->workers > 4096 ? 256 * r->workers : 4096);
    r->ordered = rng_next(&s) & 1;
    r->fail_fast = rng_next(&s) % 3 == 0;
    r->source_mode = rng_next(&s) % 8 == 0 && !g_cfg.no_source;
    r->producers = r->source_mode ? 0 : 1 + (int)(rng_next(&s) % (uint64_t)g_cfg.max_producers);
    r->consumers = 1 + (int)(rng_next(&s) % (uint64_t)g_cfg.max_consumers);
    static const uint32_t FAILS[] = {0, 1, 10, 100};
    r->fail_per_mille = FAILS[rng_next(&s) % 4];
    uint64_t n;
    if (rng_next(&s) % 20 == 0)
        n = 1 + rng_next(&s) % 8;
    else
        n = 1 + rng_next(&s) % (2 * mean_items);
    if (r->bound <= 4 && n > 3000) /* hand-offs one item at a time are slow: keep it short */
        n = 1 + n % 3000;
    if (n > g_cfg.max_run_items)
        n = g_cfg.max_run_items;
    r->n = n;
    uint64_t e = rng_next(&s) % 100;
    r->end = e < 40 ? END_DRAIN : e < 55 ? END_CLOSE_EARLY : e < 80 ? END_CANCEL : END_FREE;
    r->where = (enum where)(rng_next(&s) % 3);
    if (r->end == END_FREE)
        r->where = BY_CONSUMER;
    if (r->end == END_CLOSE_EARLY && r->where == BY_CONTROL)
        r->where = BY_CONSUMER;
    r->trigger = rng_next(&s) % n;
    r->cancel_delay_us = rng_next(&s) % 3000;
    r->finite = r->end == END_FREE;
    r->source_fail_at = UINT64_MAX;
    if (r->source_mode && rng_next(&s) % 4 == 0)
        r->source_fail_at = rng_next(&s) % (n + 1);
    if (g_cfg.canary) {
        r->workers = 4;
        r->capacity = r->bound = 64;
        r->end = END_DRAIN;
        r->fail_per_mille = 0;
        r->source_mode = false;
        r->producers = r->consumers = 1;
    }
    if (g_cfg.selftest) {
        r->end = END_DRAIN;
        r->fail_fast = false;
    }
}

static void describe(const struct run *r, uint64_t run_no)
{
    snprintf(g_ctx, sizeof g_ctx,
             "run %" PRIu64 " (replay: --run-seed %" PRIu64 "): %" PRIu64
             " items, %u workers, capacity %u, %s, fail_fast %d, %s, %d consumers, "
             "failures %u/1000, end %s by %s at %" PRIu64 "%s",
             run_no, r->seed, r->n, r->workers, r->capacity,
             r->ordered ? "ordered" : "unordered", r->fail_fast,
             r->source_mode ? "source" : r->producers == 1 ? "1 producer"
                                     : r->producers == 2 ? "2 producers"
                                                         : "3 producers",
             r->consumers, r->fail_per_mille, END_NAMES[r->end], WHERE_NAMES[r->where],
             r->trigger, r->source_fail_at != UINT64_MAX ? ", source fails" : "");
}

static void run_one(struct run *r, uint64_t run_no)
{
    describe(r, run_no);
    if (g_cfg.verbose) {
        printf("%s\n", g_ctx);
        fflush(stdout);
    }
    atomic_store(&g_run_started_ns, now_ns());
    atomic_store(&g_in_run, 1);
    uint64_t n = r->n;
    r->returned = calloc(n, 1);
    r->worked = calloc(n, 1);
    r->accepted = calloc(n, 1);
    r->refused = calloc(n, 1);
    r->index_seen = calloc(n + 1, 1);
    r->status = calloc(n, 1);
    RCHECK(r->returned && r->worked && r->accepted && r->refused && r->index_seen &&
               r->status,
           "out of memory");
    memset(r->status, 0xFF, n);
    r->control = pthread_self();
    atomic_store(&r->producers_left, r->producers);
    atomic_store(&r->consumers_left, r->consumers);
    unsigned long long made0 = atomic_load(&g_items_made);

    pmap_options o;
    pmap_options_init(&o);
    o.work = soak_work;
    o.ctx = r;
    o.workers = r->workers;
    o.capacity = r->capacity;
    o.ordered = r->ordered;
    o.fail_fast = r->fail_fast;
    o.worker_init = soak_init;
    o.worker_exit = soak_exit;
    o.on_drop = soak_on_drop;
    o.name = "soak";
    if (r->source_mode)
        o.source = soak_source;
    pmap_pool *pool = NULL;
    RCHECK_ST(pmap_new(&o, &pool), PMAP_OK);
    atomic_store(&r->pool, pool);

    if (g_cfg.signals || run_no % 16 == 0)
        check_sigblk(r);

    pthread_t prod[3], cons[3];
    struct thread_arg pa[3], ca[3];
    for (int i = 0; i < r->consumers; i++) {
        ca[i] = (struct thread_arg){r, i};
        cons[i] = spawn(consumer_main, &ca[i]);
    }
    for (int i = 0; i < r->producers; i++) {
        pa[i] = (struct thread_arg){r, i};
        prod[i] = spawn(producer_main, &pa[i]);
    }
    if (r->where == BY_CONTROL && r->end == END_CANCEL) {
        sleep_us(r->cancel_delay_us);
        if (!atomic_exchange(&r->triggered, 1))
            take_end_action(r);
    }
    for (int i = 0; i < r->producers; i++)
        join(prod[i]);

    bool drained = false;
    pmap_stats st_before;
    if (r->end == END_FREE) {
        /* Free once a consumer says stop, or once everything came back anyway. */
        for (;;) {
            if (atomic_load(&r->stop))
                break;
            bool input_over = r->source_mode ? atomic_load(&r->source_done) != 0 : true;
            if (input_over && atomic_load(&r->handed_back) >= atomic_load(&r->acc))
                break;
            if (atomic_load(&r->consumers_left) == 0)
                break;
            sleep_us(200);
        }
        atomic_store(&r->stop, 1);
        for (int i = 0; i < r->consumers; i++)
            join(cons[i]);
        RCHECK_ST(pmap_stats_get(pool, &st_before), PMAP_OK);
    } else {
        if (!r->source_mode)
            RCHECK_ST(pmap_close(pool), PMAP_OK); /* idempotent, also after a cancel */
        for (int i = 0; i < r->consumers; i++)
            join(cons[i]);
        drained = true;
        RCHECK_ST(pmap_stats_get(pool, &st_before), PMAP_OK);
        pmap_result extra;
        RCHECK_ST(pmap_next(pool, &extra, FOREVER), PMAP_DONE);
    }
    bool was_cancelled = pmap_is_cancelled(pool);
    if (r->fail_fast && atomic_load(&r->n_failed) > atomic_load(&r->n_coop))
        RCHECK(was_cancelled, "fail_fast pool not cancelled after a failure");
    if (atomic_load(&r->explicit_cancels) > 0)
        RCHECK(was_cancelled, "pool not cancelled after pmap_cancel");

    uint64_t t0 = now_ns();
    RCHECK_ST(pmap_free(pool), PMAP_OK);
    double free_ms = ms_since(t0);
    RCHECK(free_ms < rel_limit_ms(2000), "pmap_free took %.1f ms", free_ms);
    if (free_ms > g_tot.max_free_ms)
        g_tot.max_free_ms = free_ms;
    atomic_store(&r->pool, NULL);

    /* ---- the ledger, now that every pool thread has been joined ---- */
    RCHECK(atomic_load(&r->inits) == (int)r->workers && atomic_load(&r->exits) == (int)r->workers,
           "worker_init ran %d times, worker_exit %d times, for %u workers",
           atomic_load(&r->inits), atomic_load(&r->exits), r->workers);
    RCHECK(atomic_load(&r->exit_wrong_thread) == 0, "worker_exit ran off its worker's thread");
    uint64_t claimed = atomic_load(&r->next_id);
    if (claimed > n)
        claimed = n;
    uint64_t n_acc = 0, n_ref = 0;
    for (uint64_t id = 0; id < n; id++) {
        unsigned a = atomic_load(&r->accepted[id]), f = atomic_load(&r->refused[id]);
        unsigned ret = atomic_load(&r->returned[id]), w = atomic_load(&r->worked[id]);
        if (id >= claimed) {
            RCHECK(a + f + ret + w == 0, "item %" PRIu64 " was never made but seen", id);
            continue;
        }
        if (r->source_mode && id >= r->source_fail_at) {
            RCHECK(a + f + ret + w == 0, "item %" PRIu64 " after the source failure", id);
            continue;
        }
        RCHECK(a + f == 1, "item %" PRIu64 ": accepted %u, refused %u", id, a, f);
        if (a) {
            n_acc++;
            RCHECK(ret == 1, "accepted item %" PRIu64 " came back %u times (expected once)",
                   id, ret);
        } else {
            n_ref++;
            RCHECK(ret == 0 && w == 0, "refused item %" PRIu64 ": came back %u, ran %u", id,
                   ret, w);
        }
        RCHECK(w <= 1, "item %" PRIu64 " ran %u times", id, w);
        if (r->status[id] == PMAP_ITEM_CANCELLED)
            RCHECK(w == 0, "item %" PRIu64 " reported cancelled ran later", id);
    }
    uint64_t n_sf_made = (uint64_t)atomic_load(&r->source_failed_made);
    RCHECK(atomic_load(&r->acc) == n_acc + n_sf_made, "acc %llu, accepted items %" PRIu64,
           atomic_load(&r->acc), n_acc);
    uint64_t back = atomic_load(&r->handed_back) + atomic_load(&r->dropped);
    uint64_t sf_back = atomic_load(&r->n_source_failed);
    RCHECK(sf_back <= n_sf_made, "source failure handed back %" PRIu64 " times", sf_back);
    RCHECK(back == n_acc + sf_back, "%" PRIu64 " results for %" PRIu64 " accepted items",
           back, n_acc);
    for (uint64_t i = 0; i < n_acc + n_sf_made; i++) {
        unsigned seen = atomic_load(&r->index_seen[i]);
        bool lost_sf_ok = !drained && r->source_mode && i == r->source_fail_at;
        RCHECK(seen == 1 || (seen == 0 && lost_sf_ok), "index %" PRIu64 " handed back %u times",
               i, seen);
    }
    if (drained) {
        RCHECK(atomic_load(&r->dropped) == 0, "a drained pool dropped %llu items",
               atomic_load(&r->dropped));
        RCHECK(sf_back == n_sf_made, "the source failure never came back");
        RCHECK(st_before.submitted == n_acc + n_sf_made, "stats.submitted %" PRIu64
                                                         ", accepted %" PRIu64,
               st_before.submitted, n_acc + n_sf_made);
        RCHECK(st_before.succeeded == atomic_load(&r->n_ok), "stats.succeeded %" PRIu64,
               st_before.succeeded);
        RCHECK(st_before.failed == atomic_load(&r->n_failed) + sf_back,
               "stats.failed %" PRIu64 ", seen %llu", st_before.failed,
               atomic_load(&r->n_failed));
        RCHECK(st_before.cancelled == atomic_load(&r->n_cancelled), "stats.cancelled %" PRIu64,
               st_before.cancelled);
        RCHECK(st_before.in_flight == 0, "stats.in_flight %" PRIu64 " after DONE",
               st_before.in_flight);
        if (!was_cancelled && r->end == END_DRAIN && !r->source_mode)
            RCHECK(n_acc == n, "a plain drained run accepted %" PRIu64 " of %" PRIu64, n_acc,
                   n);
    }
    unsigned long long sac = atomic_load(&r->started_after_cancel);
    RCHECK(sac <= r->workers, "%llu work calls started after pmap_cancel returned (%u workers)",
           sac, r->workers);
    RCHECK(atomic_load(&g_items_made) == atomic_load(&g_items_freed),
           "items: %llu made, %llu freed", atomic_load(&g_items_made),
           atomic_load(&g_items_freed));
    RCHECK(atomic_load(&g_values_made) == atomic_load(&g_values_freed),
           "values: %llu made, %llu freed", atomic_load(&g_values_made),
           atomic_load(&g_values_freed));
    RCHECK(atomic_load(&g_items_made) - made0 == n_acc + n_ref, "items made this run");

    /* ---- totals ---- */
    g_tot.runs++;
    g_tot.accepted += n_acc;
    g_tot.refused += n_ref;
    g_tot.ok += atomic_load(&r->n_ok);
    g_tot.failed += atomic_load(&r->n_failed) - atomic_load(&r->n_coop);
    g_tot.coop += atomic_load(&r->n_coop);
    g_tot.cancelled += atomic_load(&r->n_cancelled);
    g_tot.dropped += atomic_load(&r->dropped);
    g_tot.source_failed += sf_back;
    g_tot.explicit_cancels += (uint64_t)atomic_load(&r->explicit_cancels);
    if (was_cancelled && atomic_load(&r->explicit_cancels) == 0 && r->end != END_FREE)
        g_tot.fail_fast_cancels++;
    g_tot.early_closes += (uint64_t)atomic_load(&r->early_closes);
    if (r->end == END_FREE)
        g_tot.early_frees++;
    if (r->end == END_DRAIN)
        g_tot.drains++;
    if (atomic_load(&r->triggered) && r->end == END_CANCEL)
        g_tot.by_where[r->where]++;
    unsigned long long lb = atomic_load(&r->max_lb);
    if (lb > g_tot.max_lb)
        g_tot.max_lb = lb;
    if (lb == r->bound)
        g_tot.runs_at_capacity++;
    if (atomic_load(&r->max_stats_in_flight) > g_tot.max_stats_in_flight)
        g_tot.max_stats_in_flight = atomic_load(&r->max_stats_in_flight);
    g_tot.started_after_cancel += sac;
    if (sac > g_tot.max_started_after_cancel)
        g_tot.max_started_after_cancel = sac;

    free(r->returned);
    free(r->worked);
    free(r->accepted);
    free(r->refused);
    free(r->index_seen);
    free(r->status);
    atomic_store(&g_in_run, 0);
}

/* ------------------------------------------------------------------------------------ */
/* Heartbeat watchdog: a run that takes over 60 s is a hang                              */
/* ------------------------------------------------------------------------------------ */

static void *heartbeat_main(void *arg)
{
    (void)arg;
    uint64_t start = now_ns();
    uint64_t run_limit = 60ull * watchdog_scale() * 1000000000ull;
    uint64_t total_limit = g_cfg.time_limit * watchdog_scale() * 1000000000ull;
    while (!atomic_load(&g_finished)) {
        sleep_ms(50);
        uint64_t now = now_ns();
        bool run_hung = atomic_load(&g_in_run) && now - atomic_load(&g_run_started_ns) > run_limit;
        if (run_hung || now - start > total_limit) {
            fprintf(stderr, "soak: WATCHDOG: %s; seed %" PRIu64 ", %s\n",
                    run_hung ? "a run hung (60 s)" : "time limit reached", g_cfg.seed, g_ctx);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *env_seed = getenv("PMAP_SOAK_SEED");
    bool seeded = false;
    if (env_seed && *env_seed) {
        g_cfg.seed = rel_parse_u64(env_seed);
        seeded = true;
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = rel_opt(argc, argv, &i, "--items")))
            g_cfg.items = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--runs")))
            g_cfg.runs = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--seed"))) {
            g_cfg.seed = rel_parse_u64(v);
            seeded = true;
        } else if ((v = rel_opt(argc, argv, &i, "--run-seed"))) {
            g_cfg.run_seed = rel_parse_u64(v);
            g_cfg.has_run_seed = true;
        } else if ((v = rel_opt(argc, argv, &i, "--max-run-items")))
            g_cfg.max_run_items = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--max-producers")))
            g_cfg.max_producers = (int)rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--max-consumers")))
            g_cfg.max_consumers = (int)rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--max-workers")))
            g_cfg.max_workers = (int)rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--time-limit")))
            g_cfg.time_limit = rel_parse_u64(v);
        else if ((v = rel_opt(argc, argv, &i, "--selftest-ledger")))
            g_cfg.selftest = strcmp(v, "lost") == 0 ? 1 : strcmp(v, "dup") == 0 ? 2 : -1;
        else if (strcmp(argv[i], "--signals") == 0)
            g_cfg.signals = true;
        else if (strcmp(argv[i], "--no-source") == 0)
            g_cfg.no_source = true;
        else if (strcmp(argv[i], "--canary") == 0)
            g_cfg.canary = true;
        else if (strcmp(argv[i], "--verbose") == 0)
            g_cfg.verbose = true;
        else {
            fprintf(stderr, "soak: unknown argument %s (see the comment at the top of "
                            "reliability/soak.c)\n", argv[i]);
            return 2;
        }
    }
    CHECK(g_cfg.selftest >= 0, "--selftest-ledger takes lost or dup");
    CHECK(g_cfg.max_producers >= 1 && g_cfg.max_producers <= 3, "--max-producers is 1-3");
    CHECK(g_cfg.max_consumers >= 1 && g_cfg.max_consumers <= 3, "--max-consumers is 1-3");
    CHECK(g_cfg.max_workers >= 1 && g_cfg.max_workers <= 64, "--max-workers is 1-64");
    CHECK(g_cfg.max_run_items >= 1, "--max-run-items >= 1");
    if (!seeded)
        g_cfg.seed = now_ns() ^ ((uint64_t)getpid() << 32);
    if (g_cfg.canary || g_cfg.selftest) {
        g_cfg.items = g_cfg.selftest ? 2000 : 20000;
        g_cfg.runs = 1;
    }
    printf("soak: seed %" PRIu64 " (replay: --seed %" PRIu64 "), at least %" PRIu64
           " items over at least %" PRIu64 " runs%s\n",
           g_cfg.seed, g_cfg.seed, g_cfg.items, g_cfg.runs,
           g_cfg.signals ? ", SIGALRM every 100 us" : "");
    fflush(stdout);

    pthread_t hb = spawn(heartbeat_main, NULL);
    if (g_cfg.signals) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: waits inside pmap see EINTR */
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
        struct itimerval it = {{0, 100}, {0, 100}};
        CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
    }

    uint64_t t0 = now_ns();
    uint64_t master = g_cfg.seed;
    uint64_t mean = g_cfg.runs ? (g_cfg.items / g_cfg.runs) * 13 / 10 : g_cfg.items;
    if (mean < 1)
        mean = 1;
    if (mean > g_cfg.max_run_items / 2 + 1)
        mean = g_cfg.max_run_items / 2 + 1;
    struct run *r = calloc(1, sizeof *r);
    CHECK(r != NULL, "out of memory");
    uint64_t run_no = 0;
    while (g_tot.accepted < g_cfg.items || g_tot.runs < g_cfg.runs) {
        uint64_t run_seed = g_cfg.has_run_seed ? g_cfg.run_seed : rng_next(&master);
        plan_run(r, run_seed, mean);
        run_one(r, run_no++);
        if (g_cfg.has_run_seed)
            break;
    }
    free(r);
    double secs = (double)(now_ns() - t0) / 1e9;
    atomic_store(&g_finished, 1);
    join(hb);

    if (g_cfg.signals) {
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        unsigned long long sig = atomic_load(&g_signals);
        CHECK(sig >= 1000, "only %llu SIGALRMs: the storm did not happen", sig);
        CHECK(atomic_load(&g_signals_on_pool) == 0, "%llu SIGALRMs ran on pmap threads",
              atomic_load(&g_signals_on_pool));
        printf("soak signals: %llu SIGALRMs delivered, 0 on pmap threads; SigBlk checked in "
               "%" PRIu64 " runs, %" PRIu64 " pmap threads, all blocking async signals\n",
               sig, g_tot.sigblk_checks, g_tot.threads_checked);
    }
    printf("soak summary: seed %" PRIu64 ", %" PRIu64 " runs, %" PRIu64
           " items accepted and each back exactly once (%" PRIu64 " ok, %" PRIu64
           " failed, %" PRIu64 " cancelled, %" PRIu64 " stopped early on cancel, %" PRIu64
           " via on_drop, %" PRIu64 " source failures), %" PRIu64
           " refused submits; faults injected: %" PRIu64 " item failures, %" PRIu64
           " cancels (%" PRIu64 " by control, %" PRIu64 " by consumer, %" PRIu64
           " in work) + %" PRIu64 " fail_fast cancels, %" PRIu64 " early frees, %" PRIu64
           " early closes; max in-flight seen %" PRIu64 " (lower bound; %" PRIu64
           " runs reached capacity exactly; stats max %" PRIu64 "); work calls started after "
           "pmap_cancel returned: %" PRIu64 " total, max %" PRIu64
           " in a run; slowest pmap_free %.1f ms; %llu pmap_stats samples, %llu "
           "inconsistent; %.1f s\n",
           g_cfg.seed, g_tot.runs, g_tot.accepted, g_tot.ok, g_tot.failed, g_tot.cancelled,
           g_tot.coop, g_tot.dropped, g_tot.source_failed, g_tot.refused, g_tot.failed,
           g_tot.explicit_cancels, g_tot.by_where[BY_CONTROL], g_tot.by_where[BY_CONSUMER],
           g_tot.by_where[BY_WORK], g_tot.fail_fast_cancels, g_tot.early_frees,
           g_tot.early_closes, g_tot.max_lb, g_tot.runs_at_capacity, g_tot.max_stats_in_flight,
           g_tot.started_after_cancel, g_tot.max_started_after_cancel, g_tot.max_free_ms,
           atomic_load(&g_stats_samples), atomic_load(&g_stats_violations), secs);
    if (g_cfg.canary)
        printf("soak canary: racy counter %llu\n", g_canary_counter);
    unsigned long long sv = atomic_load(&g_stats_violations);
    if (sv) {
        printf("soak FAILED: %llu pmap_stats_get samples were inconsistent while pools ran "
               "(in_flight above capacity, or succeeded + failed + cancelled above "
               "submitted); first: %s\n",
               sv, g_stats_first);
        return 1;
    }
    return 0;
}
