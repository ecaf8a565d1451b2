/*
 * Negative test: pmap_free twice on the same pool (documented undefined behaviour). The
 * memory tools must see through the library: valgrind reports the invalid read / free inside
 * libpmap, and ASan's free interceptor reports the second release of the handle. Proves the
 * sanitizer and valgrind runs of the suite really watch the library's own allocations.
 */
#include "pmap.h"

#include <stdio.h>

static int32_t work(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    *result = item;
    return 0;
}

int main(void)
{
    pmap_options o;
    pmap_options_init(&o);
    o.work = work;
    o.workers = 1;
    pmap_pool *pool = NULL;
    if (pmap_new(&o, &pool) != PMAP_OK)
        return 2;
    pmap_free(pool);
    pmap_free(pool); /* the bug */
    puts("pmap_double_free: the second pmap_free went unnoticed");
    return 0;
}
