/*
 * lifecycle: options defaults, version, status strings, and pools that are created, used
 * and freed (worker_init / worker_exit counted, stats of a fresh and a finished pool).
 */
#include "common.h"

#include <sched.h>

static atomic_int g_inits, g_exits;

static void *count_init(void *ctx, uint32_t id)
{
    (void)ctx;
    (void)id;
    atomic_fetch_add(&g_inits, 1);
    return NULL;
}

static void count_exit(void *ctx, uint32_t id, void *state)
{
    (void)ctx;
    (void)id;
    (void)state;
    atomic_fetch_add(&g_exits, 1);
}

static void test_options_init(void)
{
    pmap_options o;
    memset(&o, 0xAB, sizeof o); /* garbage: init must overwrite every field */
    pmap_options_init(&o);
    CHECK(o.struct_size == sizeof(pmap_options), "struct_size %u, sizeof %zu", o.struct_size,
          sizeof(pmap_options));
    CHECK(o.workers == 0, "default workers %u", o.workers);
    CHECK(o.capacity == 0, "default capacity %u", o.capacity);
    CHECK(o.ordered == true, "default ordered must be true");
    CHECK(o.fail_fast == false, "default fail_fast must be false");
    CHECK(o.work == NULL && o.ctx == NULL && o.worker_init == NULL && o.worker_exit == NULL &&
              o.source == NULL && o.on_drop == NULL && o.name == NULL,
          "every pointer must default to NULL");
    pmap_options_init(NULL); /* ignored, must not crash */
}

static void test_version(void)
{
    const char *v = pmap_version();
    CHECK(v != NULL, "pmap_version() is NULL");
    CHECK(strcmp(v, PMAP_VERSION_STRING) == 0, "pmap_version() \"%s\" != header \"%s\"", v,
          PMAP_VERSION_STRING);
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", PMAP_VERSION_MAJOR, PMAP_VERSION_MINOR,
             PMAP_VERSION_PATCH);
    CHECK(strcmp(parts, PMAP_VERSION_STRING) == 0, "version macros %s vs string %s", parts,
          PMAP_VERSION_STRING);
    CHECK(pmap_version() == v, "pmap_version() must be static");
}

static void test_status_str(void)
{
    static const struct {
        pmap_status code;
        const char *name;
    } known[] = {
        {PMAP_OK, "PMAP_OK"},           {PMAP_DONE, "PMAP_DONE"},
        {PMAP_TIMEOUT, "PMAP_TIMEOUT"}, {PMAP_CLOSED, "PMAP_CLOSED"},
        {PMAP_CANCELLED, "PMAP_CANCELLED"}, {PMAP_INVALID, "PMAP_INVALID"},
        {PMAP_SYSTEM, "PMAP_SYSTEM"},   {PMAP_INTERNAL, "PMAP_INTERNAL"},
        {PMAP_FORKED, "PMAP_FORKED"},
    };
    size_t n = sizeof known / sizeof known[0];
    /* The codes are distinct, and 0..8 as the contract spells them. */
    for (size_t i = 0; i < n; i++) {
        CHECK(known[i].code == (pmap_status)i, "%s is %d, expected %zu", known[i].name,
              known[i].code, i);
        const char *s = pmap_status_str(known[i].code);
        CHECK(s != NULL && s[0] != '\0', "pmap_status_str(%s) is empty", known[i].name);
        CHECK(contains_word(s, known[i].name), "pmap_status_str(%d) = \"%s\" does not name %s",
              known[i].code, s, known[i].name);
        CHECK(strstr(s, "PMAP_UNKNOWN") == NULL, "known code %d described as unknown: %s",
              known[i].code, s);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, pmap_status_str(known[j].code)) != 0,
                  "%s and %s have the same description", known[i].name, known[j].name);
    }
    const pmap_status unknown[] = {-1, 9, 42, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = pmap_status_str(unknown[i]);
        CHECK(s != NULL, "pmap_status_str(%d) is NULL", unknown[i]);
        CHECK(strstr(s, "PMAP_UNKNOWN") != NULL, "pmap_status_str(%d) = \"%s\"", unknown[i], s);
    }
    /* Item statuses and the no-worker marker. */
    CHECK(PMAP_ITEM_OK == 0 && PMAP_ITEM_FAILED == 1 && PMAP_ITEM_CANCELLED == 2 &&
              PMAP_ITEM_SOURCE_FAILED == 3,
          "item status numbers changed");
    CHECK(PMAP_NO_WORKER == UINT32_MAX, "PMAP_NO_WORKER must be UINT32_MAX");
}

static void *last_error_fresh_thread(void *arg)
{
    (void)arg;
    const char *e = pmap_last_error();
    CHECK(e != NULL && e[0] == '\0', "a fresh thread's pmap_last_error() is \"%s\"", e);
    return NULL;
}

static int allowed_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity");
    return CPU_COUNT(&set);
}

/* Create and free empty pools of several sizes; init/exit run once per worker. */
static void test_new_free_empty(void)
{
    const uint32_t sizes[] = {1, 2, 3, 8, 0};
    for (int round = 0; round < 10; round++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            atomic_store(&g_inits, 0);
            atomic_store(&g_exits, 0);
            pmap_options o = test_opts(work_basic, NULL, sizes[k], 0, true);
            o.worker_init = count_init;
            o.worker_exit = count_exit;
            pmap_pool *pool = test_pool(&o);
            pmap_stats s = test_stats(pool);
            uint32_t expect = sizes[k];
            if (expect == 0) {
                CHECK(s.workers >= 1 && (int)s.workers <= allowed_cpus(),
                      "workers = 0 gave %u workers with %d CPUs allowed", s.workers,
                      allowed_cpus());
                expect = s.workers;
            } else {
                CHECK(s.workers == expect, "asked %u workers, stats say %u", expect, s.workers);
            }
            CHECK(s.submitted == 0 && s.succeeded == 0 && s.failed == 0 && s.cancelled == 0 &&
                      s.in_flight == 0 && s.busy_ns == 0,
                  "a fresh pool has non-zero counters");
            CHECK(!pmap_is_cancelled(pool), "a fresh pool is cancelled");
            CHECK_OK(pmap_free(pool));
            CHECK(atomic_load(&g_inits) == (int)expect, "worker_init ran %d times for %u workers",
                  atomic_load(&g_inits), expect);
            CHECK(atomic_load(&g_exits) == (int)expect, "worker_exit ran %d times for %u workers",
                  atomic_load(&g_exits), expect);
        }
    }
}

/* A complete run: submit, close, drain to DONE, check values and stats, free. */
static void test_full_run(void)
{
    enum { N = 100, COST_US = 1000 };
    pmap_options o = test_opts(work_basic, NULL, 2, 0, true);
    pmap_pool *pool = test_pool(&o);
    sleep_ms(5);
    pmap_stats s0 = test_stats(pool);
    CHECK(s0.elapsed_ns >= 5 * 1000000ull, "elapsed_ns %" PRIu64 " after sleeping 5 ms",
          s0.elapsed_ns);
    for (uint64_t i = 0; i < N; i++) {
        struct item *it = item_new(i);
        it->cost_us = i < 10 ? COST_US : 0;
        CHECK_OK(pmap_submit(pool, it, FOREVER));
    }
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    for (uint64_t i = 0; i < N; i++) {
        CHECK_OK(pmap_next(pool, &r, FOREVER));
        CHECK(r.index == i, "index %" PRIu64 ", expected %" PRIu64, r.index, i);
        CHECK(r.status == PMAP_ITEM_OK && r.error == 0, "item %" PRIu64 " status %d error %d", i,
              r.status, r.error);
        struct item *it = r.item;
        struct value *v = r.value;
        CHECK(it->id == i && v->id == i, "item %" PRIu64 " / value %" PRIu64 " at index %" PRIu64,
              it->id, v->id, i);
        CHECK(r.worker < 2, "worker %u of 2", r.worker);
        result_release(&r);
    }
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_ST(pmap_next(pool, &r, 0), PMAP_DONE);
    check_stats_settled(pool, N, N, 0, 0);
    pmap_stats s = test_stats(pool);
    CHECK(s.busy_ns >= 10ull * COST_US * 1000u, "busy_ns %" PRIu64 " after 10 x %d us of work",
          s.busy_ns, COST_US);
    CHECK(s.elapsed_ns >= s0.elapsed_ns, "elapsed_ns went backwards");
    CHECK_OK(pmap_free(pool));
    check_all_released();
}

int main(void)
{
    watchdog(20);
    pthread_t t = spawn(last_error_fresh_thread, NULL);
    join(t);
    last_error_fresh_thread(NULL); /* main has made no failed call yet either */
    test_options_init();
    test_version();
    test_status_str();
    test_new_free_empty();
    test_full_run();
    printf("lifecycle: ok\n");
    return 0;
}
