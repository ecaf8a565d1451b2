/*
 * Negative test: a deliberate definite leak. valgrind (--leak-check=full
 * --errors-for-leak-kinds=definite,indirect --error-exitcode=1) and LeakSanitizer must both
 * fail the run.
 */
#include <stdio.h>
#include <stdlib.h>

void *volatile g_sink;

int main(void)
{
    g_sink = malloc(4096);
    ((char *)g_sink)[0] = 1;
    g_sink = NULL; /* the only pointer is gone: definitely lost */
    puts("leak: exiting with 4096 bytes leaked");
    return 0;
}
