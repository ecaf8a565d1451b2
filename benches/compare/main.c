/* bench_compare: one contender, one work, one timed run per process; see
 * scripts/bench_compare.sh, which interleaves the processes and summarizes them.
 *
 *   bench_compare calibrate
 *       print the spin rate (iterations per microsecond) to pass as --cal
 *   bench_compare run --contender C --work W --n N [--cal R] [--ordered 0|1]
 *                     [--workers T] [--capacity K] [--tokens T] [--chunk K] [--batch B]
 *                     [--warmup N] [--label L]
 *       C: serial | pmap-single | pmap-single-drain | pmap-batch | pmap-source |
 *          pmap-source-batch | pmap-threads | pmap-threads-batch | tbb | omp
 *       W: trivial | spin:<ns> | skew | sleep:<ns>   (see work.h)
 *       Runs a warm-up of --warmup items (default n/10, at most 200000) with the same
 *       contender, then the timed run, checks that every output came back (in order when
 *       ordered), and prints one tab-separated line:
 *       label contender work n wall_ns cpu_ns maxrss_kib status
 *   bench_compare idle [--seconds S] [--consumer 0|1] [--label L]
 *       CPU time of a pmap pool that has no items for S seconds (default 2), optionally
 *       with a consumer thread blocked in pmap_next(-1); prints the same line (n = 0).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "pmap.h"

static uint64_t g_wall0, g_wall1, g_cpu0, g_cpu1;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static long maxrss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

void timer_start(void) {
    g_cpu0 = cpu_ns();
    g_wall0 = mono_ns();
}

void timer_stop(void) {
    g_wall1 = mono_ns();
    g_cpu1 = cpu_ns();
}

void check_init(bench_check *c, uint64_t n, int ordered) {
    memset(c, 0, sizeof *c);
    c->n = n;
    c->ordered = ordered;
    if (!ordered) c->seen = calloc(n ? n : 1, 1);
}

const char *check_finish(bench_check *c) {
    if (!c->error && c->got != c->n) c->error = "not every output came back";
    if (!c->error && !c->ordered)
        for (uint64_t i = 0; i < c->n; i++)
            if (!c->seen[i]) { c->error = "an output is missing"; break; }
    free(c->seen);
    c->seen = NULL;
    return c->error;
}

const char *run_serial(const bench_params *p, bench_check *c) {
    work_fn fn = p->fn;
    timer_start();
    for (uint64_t i = 0; i < p->n; i++) check_one(c, i, (uintptr_t)i + 1, fn((uintptr_t)i + 1));
    timer_stop();
    return NULL;
}

static const char *run_one(const char *contender, const bench_params *p) {
    bench_check c;
    check_init(&c, p->n, p->ordered);
    const char *err;
    if (strcmp(contender, "serial") == 0) err = run_serial(p, &c);
    else if (strncmp(contender, "pmap-", 5) == 0) err = run_pmap(contender + 5, p, &c);
    else if (strcmp(contender, "tbb") == 0) err = run_tbb(p, &c);
    else if (strcmp(contender, "omp") == 0) err = run_omp(p, &c);
    else err = "unknown contender";
    const char *cerr = check_finish(&c);
    return err ? err : cerr;
}

static const char *arg(int argc, char **argv, const char *name, const char *dflt) {
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return dflt;
}

static void *blocked_consumer(void *pool) {
    pmap_result r;
    while (pmap_next(pool, &r, -1) == PMAP_OK) {
    }
    return NULL;
}

static int32_t idle_work(void *ctx, void *state, void *item, void **result) {
    (void)ctx;
    (void)state;
    *result = item;
    return 0;
}

static int cmd_idle(int argc, char **argv) {
    double seconds = atof(arg(argc, argv, "--seconds", "2"));
    int consumer = atoi(arg(argc, argv, "--consumer", "0"));
    const char *label = arg(argc, argv, "--label", "idle");
    pmap_options o;
    pmap_options_init(&o);
    o.work = idle_work;
    pmap_pool *pool;
    if (pmap_new(&o, &pool) != PMAP_OK) {
        fprintf(stderr, "pmap_new: %s\n", pmap_last_error());
        return 1;
    }
    pthread_t t;
    if (consumer) pthread_create(&t, NULL, blocked_consumer, pool);
    usleep(100000); /* let the threads settle; thread start-up is not idle time */
    timer_start();
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    timer_stop();
    pmap_close(pool);
    if (consumer) pthread_join(t, NULL);
    pmap_free(pool);
    printf("%s\t%s\t%s\t0\t%llu\t%llu\t%ld\tok\n", label, consumer ? "pmap-idle+consumer" : "pmap-idle",
           "none", (unsigned long long)(g_wall1 - g_wall0), (unsigned long long)(g_cpu1 - g_cpu0),
           maxrss_kib());
    return 0;
}

int cmd_wakelat(int rounds, int pin_threads); /* wakelat.c */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_compare calibrate | run ... | idle ... | wakelat ... (see main.c)\n");
        return 2;
    }
    if (strcmp(argv[1], "calibrate") == 0) {
        printf("%.3f\n", work_calibrate());
        return 0;
    }
    if (strcmp(argv[1], "idle") == 0) return cmd_idle(argc, argv);
    if (strcmp(argv[1], "wakelat") == 0)
        return cmd_wakelat(atoi(arg(argc, argv, "--rounds", "200")), atoi(arg(argc, argv, "--pin", "0")));
    if (strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "unknown command %s\n", argv[1]);
        return 2;
    }
    const char *contender = arg(argc, argv, "--contender", NULL);
    const char *work = arg(argc, argv, "--work", "trivial");
    const char *label = arg(argc, argv, "--label", "-");
    if (!contender) {
        fprintf(stderr, "--contender is required\n");
        return 2;
    }
    const char *cal = arg(argc, argv, "--cal", NULL);
    work_set_calibration(cal ? atof(cal) : work_calibrate());

    bench_params p;
    memset(&p, 0, sizeof p);
    double mean_ns;
    p.fn = work_select(work, &mean_ns);
    if (!p.fn) {
        fprintf(stderr, "unknown work %s\n", work);
        return 2;
    }
    p.n = strtoull(arg(argc, argv, "--n", "100000"), NULL, 10);
    p.ordered = atoi(arg(argc, argv, "--ordered", "1"));
    p.workers = (uint32_t)atoi(arg(argc, argv, "--workers", "0"));
    p.capacity = (uint32_t)atoi(arg(argc, argv, "--capacity", "0"));
    p.tokens = (uint32_t)atoi(arg(argc, argv, "--tokens", "0"));
    p.chunk = (uint32_t)atoi(arg(argc, argv, "--chunk", "0"));
    p.batch = (uint32_t)atoi(arg(argc, argv, "--batch", "256"));
    uint64_t warm = p.n / 10 < 200000 ? p.n / 10 : 200000;
    const char *w = arg(argc, argv, "--warmup", NULL);
    if (w) warm = strtoull(w, NULL, 10);

    if (warm) {
        bench_params wp = p;
        wp.n = warm;
        const char *err = run_one(contender, &wp);
        if (err) {
            printf("%s\t%s\t%s\t%llu\t0\t0\t%ld\tFAILED (warm-up): %s\n", label, contender, work,
                   (unsigned long long)p.n, maxrss_kib(), err);
            return 1;
        }
    }
    const char *err = run_one(contender, &p);
    printf("%s\t%s\t%s\t%llu\t%llu\t%llu\t%ld\t%s%s\n", label, contender, work,
           (unsigned long long)p.n, (unsigned long long)(g_wall1 - g_wall0),
           (unsigned long long)(g_cpu1 - g_cpu0), maxrss_kib(), err ? "FAILED: " : "ok",
           err ? err : "");
    return err ? 1 : 0;
}
