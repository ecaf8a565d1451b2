/* Consumer 3, C part: links CMake's pmap::pmap_static (libpmap.a plus the native static
 * libraries the CMake package lists). */
#include <pmap.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int32_t add_one(void *ctx, void *state, void *item, void **result) {
    (void)ctx;
    (void)state;
    *result = (void *)((uintptr_t)item + 1); /* small integers travel in the pointer bits */
    return 0;
}

int main(void) {
    if (strcmp(pmap_version(), PMAP_VERSION_STRING) != 0) return 1;
    pmap_options opts;
    pmap_options_init(&opts);
    opts.work = add_one;
    opts.workers = 2;
    pmap_pool *pool;
    if (pmap_new(&opts, &pool) != PMAP_OK) {
        fprintf(stderr, "pmap_new: %s\n", pmap_last_error());
        return 1;
    }
    enum { N = 1000 };
    uintptr_t next = 0;
    int bad = 0;
    pmap_result r;
    for (uintptr_t i = 0; i < N; i++) {
        pmap_status s;
        while ((s = pmap_submit(pool, (void *)i, 0)) == PMAP_TIMEOUT)
            if (pmap_next(pool, &r, -1) == PMAP_OK) bad += (uintptr_t)r.value != ++next;
        if (s != PMAP_OK) return 1;
    }
    pmap_close(pool);
    while (pmap_next(pool, &r, -1) == PMAP_OK) bad += (uintptr_t)r.value != ++next;
    pmap_free(pool);
    if (bad || next != N) {
        fprintf(stderr, "%d bad results, %lu of %d items\n", bad, (unsigned long)next, N);
        return 1;
    }
    printf("pmap_version=%s\n", pmap_version());
    printf("ok: %d items through pmap::pmap_static\n", N);
    return 0;
}
