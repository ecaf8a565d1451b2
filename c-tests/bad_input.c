/*
 * bad_input: misuse that can be detected is refused, never crashes, and explains itself.
 *  - NULL pool / out / opts arguments to every function: PMAP_INVALID, with a
 *    pmap_last_error() that names the function; out-params untouched on failure;
 *  - bad options: work NULL, struct_size 0 / too small, a larger struct_size with a zero
 *    tail (accepted) or a non-zero tail (refused), absurd workers / capacity;
 *  - capacity 0 means the default window documented in pmap.h (max(4096, 256 x workers));
 *  - next_many with max 0; pmap_free(NULL); next after DONE; submit after close; close
 *    idempotent; pmap_last_error is per thread.
 */
#include "common.h"

/* The default window as pmap.h documents it for pmap_options.capacity; keep in step. */
#define DOCUMENTED_DEFAULT_CAPACITY(w) ((w) * 256u > 4096u ? (w) * 256u : 4096u)

static struct gate g_gate;

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    (void)item;
    gate_pass(&g_gate);
    *result = NULL;
    return 0;
}

static int32_t work_null(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    (void)item;
    *result = NULL;
    return 0;
}

#define CHECK_INVALID(call, fn)                                                            \
    do {                                                                                   \
        CHECK_ST(call, PMAP_INVALID);                                                      \
        CHECK_LAST_ERROR_NAMES(fn);                                                        \
    } while (0)

static void null_pool(void)
{
    pmap_result r;
    pmap_stats s;
    size_t n = 7;
    void *items[1] = {NULL};
    CHECK_INVALID(pmap_submit(NULL, NULL, NOWAIT), "pmap_submit");
    CHECK_INVALID(pmap_submit(NULL, NULL, FOREVER), "pmap_submit");
    CHECK_INVALID(pmap_submit_many(NULL, items, 1, &n, NOWAIT), "pmap_submit_many");
    CHECK_INVALID(pmap_close(NULL), "pmap_close");
    CHECK_INVALID(pmap_next(NULL, &r, NOWAIT), "pmap_next");
    CHECK_INVALID(pmap_next(NULL, &r, FOREVER), "pmap_next");
    n = 7;
    CHECK_INVALID(pmap_next_many(NULL, &r, 1, &n, FOREVER), "pmap_next_many");
    CHECK_INVALID(pmap_cancel(NULL), "pmap_cancel");
    CHECK_INVALID(pmap_stats_get(NULL, &s), "pmap_stats_get");
    CHECK(pmap_is_cancelled(NULL) == false, "pmap_is_cancelled(NULL) must be false");
    CHECK_OK(pmap_free(NULL));
}

/* Field by field: the padding of a result written by pmap is not initialised. */
static bool same_result(const pmap_result *a, const pmap_result *b)
{
    return a->index == b->index && a->item == b->item && a->value == b->value &&
           a->status == b->status && a->error == b->error && a->worker == b->worker;
}

static void null_args(void)
{
    pmap_options o = test_opts(work_null, NULL, 1, 4, true);
    pmap_pool *sentinel = (pmap_pool *)(uintptr_t)0x1234;
    pmap_pool *pool = sentinel;
    CHECK_INVALID(pmap_new(NULL, &pool), "pmap_new");
    CHECK(pool == sentinel, "pmap_new wrote *out on failure");
    CHECK_INVALID(pmap_new(&o, NULL), "pmap_new");

    pool = test_pool(&o);
    pmap_result r;
    size_t n;
    /* NULL out-params. */
    CHECK_INVALID(pmap_next(pool, NULL, NOWAIT), "pmap_next");
    CHECK_INVALID(pmap_next(pool, NULL, FOREVER), "pmap_next");
    n = 7;
    CHECK_INVALID(pmap_next_many(pool, NULL, 4, &n, NOWAIT), "pmap_next_many");
    CHECK(n == 0, "*got is %zu after a refused next_many", n);
    CHECK_INVALID(pmap_next_many(pool, &r, 1, NULL, NOWAIT), "pmap_next_many");
    CHECK_INVALID(pmap_stats_get(pool, NULL), "pmap_stats_get");
    void *items[2] = {NULL, NULL};
    CHECK_INVALID(pmap_submit_many(pool, items, 2, NULL, NOWAIT), "pmap_submit_many");
    n = 7;
    CHECK_INVALID(pmap_submit_many(pool, NULL, 2, &n, NOWAIT), "pmap_submit_many");
    CHECK(n == 0, "*accepted is %zu after a refused submit_many", n);
    /* max == 0 */
    n = 7;
    CHECK_INVALID(pmap_next_many(pool, &r, 0, &n, NOWAIT), "pmap_next_many");
    CHECK(n == 0, "*got is %zu after max == 0", n);
    /* n == 0 is fine, with or without an array. */
    n = 7;
    CHECK_OK(pmap_submit_many(pool, NULL, 0, &n, NOWAIT));
    CHECK(n == 0, "accepted %zu of 0", n);
    n = 7;
    CHECK_OK(pmap_submit_many(pool, items, 0, &n, FOREVER));
    CHECK(n == 0, "accepted %zu of 0", n);
    /* None of the refused calls submitted anything. */
    pmap_stats s = test_stats(pool);
    CHECK(s.submitted == 0, "refused calls submitted %" PRIu64 " items", s.submitted);

    /* Out-params are written only on PMAP_OK. */
    memset(&r, 0xA5, sizeof r);
    pmap_result copy = r;
    CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_TIMEOUT);
    CHECK(same_result(&r, &copy), "pmap_next wrote *out on PMAP_TIMEOUT");

    /* Submit after close; close idempotent; next after DONE stays DONE. */
    CHECK_OK(pmap_submit(pool, NULL, NOWAIT)); /* a NULL item is allowed */
    CHECK_OK(pmap_close(pool));
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_submit(pool, NULL, NOWAIT), PMAP_CLOSED);
    CHECK_LAST_ERROR_NAMES("pmap_submit");
    CHECK_ST(pmap_submit(pool, NULL, FOREVER), PMAP_CLOSED);
    n = 7;
    CHECK_ST(pmap_submit_many(pool, items, 2, &n, FOREVER), PMAP_CLOSED);
    CHECK(n == 0, "submit_many after close accepted %zu", n);
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.index == 0 && r.item == NULL && r.status == PMAP_ITEM_OK, "the NULL item");
    for (int i = 0; i < 5; i++) {
        memcpy(&copy, &r, sizeof r);
        CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
        CHECK_ST(pmap_next(pool, &r, NOWAIT), PMAP_DONE);
        CHECK(same_result(&r, &copy), "pmap_next wrote *out on PMAP_DONE");
        n = 7;
        CHECK_ST(pmap_next_many(pool, &r, 4, &n, FOREVER), PMAP_DONE);
        CHECK(n == 0, "*got %zu on DONE", n);
    }
    CHECK_OK(pmap_close(pool)); /* still idempotent after DONE */
    CHECK_OK(pmap_free(pool));
}

static void bad_options(void)
{
    pmap_pool *pool = NULL;
    pmap_options o;

    pmap_options_init(&o);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new"); /* work is NULL */
    CHECK(strstr(pmap_last_error(), "work") != NULL, "message does not mention work: %s",
          pmap_last_error());
    CHECK(pool == NULL, "pmap_new wrote *out on failure");

    o = test_opts(work_null, NULL, 1, 4, true);
    o.struct_size = 0;
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    o.struct_size = 4;
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    o.struct_size = (uint32_t)offsetof(pmap_options, name);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    o.struct_size = (uint32_t)sizeof(pmap_options) - 1;
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    CHECK(strstr(pmap_last_error(), "struct_size") != NULL, "message: %s", pmap_last_error());

    /* A newer, larger header: accepted when the unknown tail is zero. */
    struct {
        pmap_options o;
        unsigned char tail[64];
    } big;
    memset(&big, 0, sizeof big);
    big.o = test_opts(work_null, NULL, 1, 4, true);
    big.o.struct_size = (uint32_t)sizeof big;
    CHECK_OK(pmap_new(&big.o, &pool));
    CHECK_OK(pmap_submit(pool, NULL, FOREVER));
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, FOREVER));
    CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
    CHECK_OK(pmap_free(pool));
    pool = NULL;
    big.o.struct_size = (uint32_t)sizeof(pmap_options) + 1; /* odd sizes too */
    CHECK_OK(pmap_new(&big.o, &pool));
    CHECK_OK(pmap_free(pool));
    pool = NULL;
    /* ... and refused when a field the library does not know is set. */
    big.o.struct_size = (uint32_t)sizeof big;
    big.tail[10] = 1;
    CHECK_INVALID(pmap_new(&big.o, &pool), "pmap_new");
    CHECK(pool == NULL, "pmap_new wrote *out on failure");
    big.tail[10] = 0;
    big.tail[63] = 0x80;
    CHECK_INVALID(pmap_new(&big.o, &pool), "pmap_new");
    big.tail[63] = 0;
    big.tail[0] = 1;
    CHECK_INVALID(pmap_new(&big.o, &pool), "pmap_new");

    /* Absurd sizes. */
    o = test_opts(work_null, NULL, 100000, 4, true);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    CHECK(strstr(pmap_last_error(), "workers") != NULL, "message: %s", pmap_last_error());
    o = test_opts(work_null, NULL, UINT32_MAX, 4, true);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    o = test_opts(work_null, NULL, 1, UINT32_MAX, true);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    CHECK(strstr(pmap_last_error(), "capacity") != NULL, "message: %s", pmap_last_error());
    o = test_opts(work_null, NULL, 1, (1u << 30) + 1, true);
    CHECK_INVALID(pmap_new(&o, &pool), "pmap_new");
    CHECK(pool == NULL, "pmap_new wrote *out on failure");
}

/* capacity 0: the documented default window, seen through behaviour. */
static void default_capacity(uint32_t workers)
{
    gate_init(&g_gate);
    pmap_options o = test_opts(work_gated, NULL, workers, 0, true);
    pmap_pool *pool = test_pool(&o);
    uint32_t accepted = 0;
    while (accepted < 100000 && pmap_submit(pool, NULL, NOWAIT) == PMAP_OK)
        accepted++;
    uint32_t want = DOCUMENTED_DEFAULT_CAPACITY(workers);
    CHECK(accepted == want, "capacity 0 with %u workers admitted %u items, expected %u", workers,
          accepted, want);
    pmap_stats s = test_stats(pool);
    CHECK(s.in_flight == want, "in_flight %" PRIu64, s.in_flight);
    gate_open(&g_gate);
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    uint32_t got = 0;
    while (pmap_next(pool, &r, FOREVER) == PMAP_OK)
        got++;
    CHECK(got == want, "got %u back", got);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

static const char *g_main_error;

static void *fail_on_other_thread(void *arg)
{
    (void)arg;
    CHECK_ST(pmap_close(NULL), PMAP_INVALID);
    CHECK(contains_word(pmap_last_error(), "pmap_close"), "other thread: %s", pmap_last_error());
    return NULL;
}

/* pmap_last_error is per thread: another thread's failure does not change ours. */
static void last_error_per_thread(void)
{
    CHECK_ST(pmap_cancel(NULL), PMAP_INVALID);
    char before[512];
    snprintf(before, sizeof before, "%s", pmap_last_error());
    g_main_error = before;
    join(spawn(fail_on_other_thread, NULL));
    CHECK(strcmp(pmap_last_error(), g_main_error) == 0,
          "this thread's message changed to \"%s\" after another thread failed",
          pmap_last_error());
    CHECK(contains_word(pmap_last_error(), "pmap_cancel"), "message: %s", pmap_last_error());
}

/* Timeouts at the extremes are not overflows. */
static void extreme_timeouts(void)
{
    pmap_options o = test_opts(work_null, NULL, 1, 4, true);
    pmap_pool *pool = test_pool(&o);
    CHECK_OK(pmap_submit(pool, NULL, INT64_MAX));
    CHECK_OK(pmap_submit(pool, NULL, INT64_MIN));
    pmap_result r;
    CHECK_OK(pmap_next(pool, &r, INT64_MAX));
    CHECK_OK(pmap_next(pool, &r, INT64_MIN));
    CHECK_ST(pmap_next(pool, &r, 1), PMAP_TIMEOUT);
    CHECK_OK(pmap_close(pool));
    CHECK_ST(pmap_next(pool, &r, INT64_MAX), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
}

int main(void)
{
    watchdog(20);
    null_pool();
    null_args();
    bad_options();
    default_capacity(1);
    default_capacity(8);
    last_error_per_thread();
    extreme_timeouts();
    printf("bad_input: ok\n");
    return 0;
}
