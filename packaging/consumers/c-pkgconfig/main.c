/* Consumer 1: a C program that finds pmap with pkg-config and links the shared library.
 * It sees only the installed prefix (PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig).
 * One thread submits and consumes (README "Pattern 1"); prints pmap_version(). */
#include <pmap.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 10000 };

static int32_t square(void *ctx, void *state, void *item, void **result) {
    (void)ctx;
    (void)state;
    long v = *(long *)item;
    long *out = malloc(sizeof *out);
    if (!out) return ENOMEM;
    *out = v * v;
    *result = out;
    return 0;
}

static uint64_t next_index = 0;
static int failures = 0;

static void consume(pmap_result *r) {
    long v = *(long *)r->item;
    if (r->status != PMAP_ITEM_OK || r->index != next_index || (long)r->index != v ||
        *(long *)r->value != v * v) {
        fprintf(stderr, "bad result: index %llu (want %llu), status %d\n",
                (unsigned long long)r->index, (unsigned long long)next_index, r->status);
        failures++;
    }
    next_index++;
    free(r->value);
    free(r->item);
}

int main(void) {
    if (strcmp(pmap_version(), PMAP_VERSION_STRING) != 0) {
        fprintf(stderr, "header is %s but the library is %s\n", PMAP_VERSION_STRING, pmap_version());
        return 1;
    }
    pmap_options opts;
    pmap_options_init(&opts);
    opts.work = square;
    opts.workers = 2;
    opts.capacity = 64;
    pmap_pool *pool;
    if (pmap_new(&opts, &pool) != PMAP_OK) {
        fprintf(stderr, "pmap_new: %s\n", pmap_last_error());
        return 1;
    }
    pmap_result r;
    for (long i = 0; i < N;) {
        long *item = malloc(sizeof *item);
        if (!item) return 1;
        *item = i;
        pmap_status s;
        while ((s = pmap_submit(pool, item, 0)) == PMAP_TIMEOUT)
            if (pmap_next(pool, &r, -1) == PMAP_OK) consume(&r);
        if (s != PMAP_OK) {
            fprintf(stderr, "pmap_submit: %s\n", pmap_status_str(s));
            free(item);
            return 1;
        }
        i++;
    }
    pmap_close(pool);
    while (pmap_next(pool, &r, -1) == PMAP_OK) consume(&r);
    pmap_free(pool);
    if (failures || next_index != N) {
        fprintf(stderr, "%d bad results, %llu of %d items\n", failures,
                (unsigned long long)next_index, N);
        return 1;
    }
    printf("pmap_version=%s\n", pmap_version());
    printf("ok: %d items squared in order through the shared library\n", N);
    return 0;
}
