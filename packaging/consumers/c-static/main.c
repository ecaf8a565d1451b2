/* Consumer 2: a C program linked with the static library libpmap.a and the flags of
 * `pkg-config --static --libs pmap` (Libs.private: the system libraries Rust needs).
 * Input comes from a `source` callback on pmap's feeder thread (README "Pattern 2");
 * unordered delivery; every item must come back exactly once. */
#include <pmap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5000 };

struct counter {
    long next;
};

static int32_t produce(void *ctx, void **item) { /* feeder thread only */
    struct counter *c = ctx;
    if (c->next == N) return 0;
    long *v = malloc(sizeof *v);
    if (!v) return -12;
    *v = c->next++;
    *item = v;
    return 1;
}

static int32_t triple(void *ctx, void *state, void *item, void **result) {
    (void)ctx;
    (void)state;
    long *out = malloc(sizeof *out);
    if (!out) return 12;
    *out = 3 * *(long *)item;
    *result = out;
    return 0;
}

int main(void) {
    if (strcmp(pmap_version(), PMAP_VERSION_STRING) != 0) {
        fprintf(stderr, "header is %s but the library is %s\n", PMAP_VERSION_STRING, pmap_version());
        return 1;
    }
    struct counter c = {0};
    pmap_options opts;
    pmap_options_init(&opts);
    opts.work = triple;
    opts.source = produce;
    opts.ctx = &c;
    opts.workers = 2;
    opts.ordered = false;
    pmap_pool *pool;
    if (pmap_new(&opts, &pool) != PMAP_OK) {
        fprintf(stderr, "pmap_new: %s\n", pmap_last_error());
        return 1;
    }
    static unsigned char seen[N];
    long got = 0, bad = 0;
    pmap_result r;
    while (pmap_next(pool, &r, -1) == PMAP_OK) {
        long v = *(long *)r.item;
        if (r.status != PMAP_ITEM_OK || v < 0 || v >= N || seen[v]++ || *(long *)r.value != 3 * v)
            bad++;
        got++;
        free(r.value);
        free(r.item);
    }
    pmap_stats st;
    if (pmap_stats_get(pool, &st) != PMAP_OK || st.succeeded != N) bad++;
    pmap_free(pool);
    if (bad || got != N) {
        fprintf(stderr, "%ld bad results, %ld of %d items\n", bad, got, N);
        return 1;
    }
    printf("pmap_version=%s\n", pmap_version());
    printf("ok: %d items through the static library\n", N);
    return 0;
}
