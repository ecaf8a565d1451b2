/* bench_compare wakelat: how long this machine takes to wake a thread that sleeps on a
 * condition variable, the hand-off every pool that parks its threads pays (pmap's
 * workers, consumers and feeder; oneTBB's workers once they stop spinning).
 *
 *   bench_compare wakelat [--rounds 200] [--pin 0|1]
 *
 * Each round a fresh thread sleeps on a condvar; 2 ms later the main thread signals it,
 * then keeps its own CPU busy for 200 µs. The latency is from the signal to the sleeper
 * running. --pin 1 puts the main thread on CPU 0 and the sleeper on CPU 1: the wake-up
 * of another, idle CPU. --pin 0 leaves placement to the scheduler: where it wakes the
 * sleeper on the signaller's busy CPU, the sleeper waits for that CPU. Prints the 10th,
 * 50th, 90th and 99th percentiles in µs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int signalled, pin;
static uint64_t woke_at;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *sleeper(void *arg) {
    (void)arg;
    if (pin) pin_to(1);
    pthread_mutex_lock(&mu);
    while (!signalled) pthread_cond_wait(&cv, &mu);
    woke_at = now_ns();
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int cmd_wakelat(int rounds, int pin_threads) {
    if (rounds < 10) rounds = 10;
    pin = pin_threads;
    if (pin) pin_to(0);
    uint64_t *lat = malloc((size_t)rounds * sizeof *lat);
    if (!lat) return 1;
    for (int i = 0; i < rounds; i++) {
        signalled = 0;
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            free(lat);
            return 1;
        }
        usleep(2000); /* the sleeper is asleep by now, and its CPU idle */
        pthread_mutex_lock(&mu);
        signalled = 1;
        uint64_t sent = now_ns();
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        for (uint64_t until = now_ns() + 200000; now_ns() < until;) {
        }
        pthread_join(t, NULL);
        lat[i] = woke_at - sent;
    }
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_u64);
    int n = rounds;
    printf("wake-up latency, %s, %d rounds (us): p10 %.1f  p50 %.1f  p90 %.1f  p99 %.1f\n",
           pin ? "sleeper on CPU 1, signaller on CPU 0" : "placement left to the scheduler", n,
           lat[n / 10] / 1e3, lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3, lat[n * 99 / 100] / 1e3);
    free(lat);
    return 0;
}
