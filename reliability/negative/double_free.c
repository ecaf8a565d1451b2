/*
 * Negative test: a deliberate double free. valgrind memcheck (with the suite's flags) and
 * AddressSanitizer must both report it and fail the run; if they do not, the tool setup is
 * broken and every "0 errors" of the suite means nothing. Never part of a passing run.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(32);
    if (!p)
        return 2;
    p[0] = 1;
    free(p);
    free(p); /* the bug */
    puts("double_free: the double free went unnoticed");
    return 0;
}
