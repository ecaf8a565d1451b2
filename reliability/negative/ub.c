/*
 * Negative test: deliberate undefined behaviour (signed overflow, an out-of-range shift).
 * UndefinedBehaviorSanitizer (-fsanitize=undefined -fno-sanitize-recover=undefined) must
 * report it and fail the run.
 */
#include <limits.h>
#include <stdio.h>

int main(void)
{
    volatile int big = INT_MAX, shift = 40;
    int sum = big + 1;   /* signed overflow */
    int s = 1 << shift;  /* shift exponent too large */
    printf("ub: %d %d went unnoticed\n", sum, s);
    return 0;
}
