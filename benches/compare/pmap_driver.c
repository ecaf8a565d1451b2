/* pmap through its C API (libpmap.so), in the call styles users write.
 *
 *   single        README pattern 1: pmap_submit(timeout 0); on PMAP_TIMEOUT take one result
 *                 with pmap_next(-1) and retry
 *   single-drain  the same, but after the blocking pmap_next also take every result that is
 *                 already ready (pmap_next with timeout 0) before submitting again
 *   batch         pmap_submit_many(batch, timeout 0); when not all were accepted,
 *                 pmap_next_many(batch, -1)
 *   source        a source callback feeds the pool; the caller takes results with pmap_next
 *   source-batch  the same, taking results with pmap_next_many(batch)
 *   threads       README's C++ `stream` pattern in C: a producer thread submits each item
 *                 with pmap_submit(-1) and closes; the caller takes results with pmap_next
 *   threads-batch the same with pmap_submit_many(batch, -1) and pmap_next_many(batch)
 *
 * The timed region starts after pmap_new and ends at PMAP_DONE (pmap_free is outside it):
 * the peers' thread pools are warm too. In source mode the source waits at a gate until
 * the clock starts.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "pmap.h"

void timer_start(void);
void timer_stop(void);

typedef struct pctx {
    work_fn fn; /* read by every worker for every item */
    /* Source state, written by the feeder for every item: on a cache line of its own, or
     * each pull would take the line holding `fn` from the workers (false sharing the
     * other contenders' drivers do not have: oneTBB's input filter keeps its counter in
     * a local). */
    _Alignas(64) uint64_t next;
    uint64_t n;
    atomic_int open; /* the gate */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pctx;

static int32_t pm_work(void *ctx, void *state, void *item, void **result) {
    (void)state;
    *result = (void *)((pctx *)ctx)->fn((uintptr_t)item);
    return 0;
}

static int32_t pm_source(void *ctx, void **item) {
    pctx *c = ctx;
    if (!atomic_load_explicit(&c->open, memory_order_acquire)) {
        pthread_mutex_lock(&c->mu);
        while (!atomic_load(&c->open)) pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    if (c->next >= c->n) return 0;
    *item = (void *)(uintptr_t)(++c->next);
    return 1;
}

static void gate_open(pctx *c) {
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->open, 1);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

typedef struct producer {
    pmap_pool *pool;
    uint64_t n;
    size_t batch; /* 0: pmap_submit per item */
    pmap_status failed;
} producer;

/* The producer thread of the threads styles: submit 1..n, blocking for room, then close. */
static void *produce(void *arg) {
    producer *pr = arg;
    void **items = malloc((pr->batch ? pr->batch : 1) * sizeof *items);
    pmap_status s = PMAP_OK;
    for (uint64_t i = 0; i < pr->n && s == PMAP_OK;) {
        if (!pr->batch) {
            s = pmap_submit(pr->pool, (void *)(uintptr_t)(i + 1), -1);
            i++;
            continue;
        }
        size_t k = 0, acc = 0;
        while (k < pr->batch && i + k < pr->n) {
            items[k] = (void *)(uintptr_t)(i + k + 1);
            k++;
        }
        s = pmap_submit_many(pr->pool, items, k, &acc, -1);
        i += acc;
    }
    if (s == PMAP_OK) s = pmap_close(pr->pool);
    pr->failed = s;
    free(items);
    return NULL;
}

static const char *status_error(const char *what, pmap_status s) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s: %s (%s)", what, pmap_status_str(s), pmap_last_error());
    return buf;
}

static inline void take(bench_check *c, const pmap_result *r) {
    if (r->status != PMAP_ITEM_OK) {
        if (!c->error) c->error = "an item did not succeed";
        c->got++;
        return;
    }
    check_one(c, r->index, (uintptr_t)r->item, (uintptr_t)r->value);
}

const char *run_pmap(const char *style, const bench_params *p, bench_check *c) {
    int source = strncmp(style, "source", 6) == 0;
    int threads = strncmp(style, "threads", 7) == 0;
    int many = strcmp(style, "batch") == 0 || strcmp(style, "source-batch") == 0 ||
               strcmp(style, "threads-batch") == 0;
    int drain = strcmp(style, "single-drain") == 0;
    if (!source && !threads && !many && !drain && strcmp(style, "single") != 0)
        return "unknown pmap style";

    pctx ctx = {.fn = p->fn, .next = 0, .n = p->n};
    atomic_init(&ctx.open, 0);
    pthread_mutex_init(&ctx.mu, NULL);
    pthread_cond_init(&ctx.cv, NULL);

    pmap_options o;
    pmap_options_init(&o);
    o.work = pm_work;
    o.ctx = &ctx;
    o.workers = p->workers;
    o.capacity = p->capacity;
    o.ordered = p->ordered != 0;
    if (source) o.source = pm_source;
    pmap_pool *pool = NULL;
    pmap_status s = pmap_new(&o, &pool);
    if (s != PMAP_OK) return status_error("pmap_new", s);

    size_t batch = p->batch ? p->batch : 256;
    pmap_result *res = malloc(batch * sizeof *res);
    void **items = malloc(batch * sizeof *items);
    const char *err = NULL;
    pmap_result r;

    producer pr = {.pool = pool, .n = p->n, .batch = many ? batch : 0, .failed = PMAP_OK};
    pthread_t producer_thread;
    int producing = 0;
    timer_start();
    if (source) {
        gate_open(&ctx);
    } else if (threads) {
        producing = pthread_create(&producer_thread, NULL, produce, &pr) == 0;
        if (!producing) err = "pthread_create failed";
    } else if (many) {
        uint64_t i = 0;
        size_t filled = 0, off = 0;
        while (i < p->n || off < filled) {
            if (off == filled) {
                filled = 0;
                off = 0;
                while (filled < batch && i < p->n) items[filled++] = (void *)(uintptr_t)(++i);
            }
            size_t acc = 0;
            s = pmap_submit_many(pool, items + off, filled - off, &acc, 0);
            off += acc;
            if (s == PMAP_OK) continue;
            if (s != PMAP_TIMEOUT) { err = status_error("pmap_submit_many", s); break; }
            size_t got = 0;
            s = pmap_next_many(pool, res, batch, &got, -1);
            if (s != PMAP_OK) { err = status_error("pmap_next_many", s); break; }
            for (size_t k = 0; k < got; k++) take(c, &res[k]);
        }
    } else {
        for (uint64_t i = 0; i < p->n;) {
            s = pmap_submit(pool, (void *)(uintptr_t)(i + 1), 0);
            if (s == PMAP_OK) { i++; continue; }
            if (s != PMAP_TIMEOUT) { err = status_error("pmap_submit", s); break; }
            s = pmap_next(pool, &r, -1);
            if (s != PMAP_OK) { err = status_error("pmap_next", s); break; }
            take(c, &r);
            if (drain)
                while (pmap_next(pool, &r, 0) == PMAP_OK) take(c, &r);
        }
    }
    if (!err && !source && !threads) {
        s = pmap_close(pool);
        if (s != PMAP_OK) err = status_error("pmap_close", s);
    }
    while (!err) {
        if (many) {
            size_t got = 0;
            s = pmap_next_many(pool, res, batch, &got, -1);
            if (s == PMAP_OK) { for (size_t k = 0; k < got; k++) take(c, &res[k]); continue; }
        } else {
            s = pmap_next(pool, &r, -1);
            if (s == PMAP_OK) { take(c, &r); continue; }
        }
        if (s != PMAP_DONE) err = status_error("pmap_next", s);
        break;
    }
    timer_stop();
    if (producing) {
        if (err) pmap_cancel(pool); /* unblocks the producer */
        pthread_join(producer_thread, NULL);
        if (!err && pr.failed != PMAP_OK) err = status_error("producer", pr.failed);
    }

    if (err) {
        gate_open(&ctx);
        pmap_cancel(pool);
    }
    s = pmap_free(pool);
    if (!err && s != PMAP_OK) err = status_error("pmap_free", s);
    free(res);
    free(items);
    pthread_cond_destroy(&ctx.cv);
    pthread_mutex_destroy(&ctx.mu);
    return err;
}
