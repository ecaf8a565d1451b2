/*
 * Helpers shared by the C test programs in c-tests/.
 *
 * Every program includes this header first (it sets _GNU_SOURCE), calls watchdog() (or
 * watchdog_thread() where SIGALRM is taken) at the top of main(), and returns 0 only when
 * every CHECK held. A failed CHECK prints file:line, the expression, a message and
 * pmap_last_error(), then exits with status 1; a hang ends with status 3.
 *
 * Built by tests/c_programs.rs with -std=c11 -Wall -Wextra -Werror -pthread.
 */
#ifndef PMAP_C_TESTS_COMMON_H
#define PMAP_C_TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "pmap.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TEST_UNUSED __attribute__((unused))

/* One millisecond / microsecond in the nanoseconds pmap timeouts use. */
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)
/* pmap timeouts: wait forever / never wait. */
#define FOREVER ((int64_t)-1)
#define NOWAIT ((int64_t)0)

/* ------------------------------------------------------------------------------------ */
/* Failing loudly                                                                        */
/* ------------------------------------------------------------------------------------ */

__attribute__((format(printf, 4, 5), noreturn)) static inline void
check_failed(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    const char *last = pmap_last_error();
    fflush(stdout);
    fprintf(stderr, "%s:%d: CHECK failed: %s\n  ", file, line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  pmap_last_error() on this thread: \"%s\"\n", last ? last : "(NULL)");
    fflush(stderr);
    /* _exit, not exit: a failure on a pool thread must not run atexit handlers or wait. */
    _exit(1);
}

/* CHECK(cond, fmt, ...): on failure print where, what and why, then exit(1). */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                          \
    } while (0)

/* CHECK_ST(call, expected): the call returns exactly the expected pmap_status. */
#define CHECK_ST(call, expected)                                                           \
    do {                                                                                   \
        pmap_status got_st_ = (call);                                                      \
        pmap_status want_st_ = (expected);                                                 \
        if (got_st_ != want_st_)                                                           \
            check_failed(__FILE__, __LINE__, #call, "returned %d (%s), expected %d (%s)",  \
                         (int)got_st_, pmap_status_str(got_st_), (int)want_st_,            \
                         pmap_status_str(want_st_));                                       \
    } while (0)

#define CHECK_OK(call) CHECK_ST(call, PMAP_OK)

/* ------------------------------------------------------------------------------------ */
/* Time                                                                                  */
/* ------------------------------------------------------------------------------------ */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep for ns nanoseconds, resuming after signals (signals.c interrupts everything). */
static inline void sleep_ns(uint64_t ns)
{
    uint64_t until = now_ns() + ns;
    struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
                          .tv_nsec = (long)(until % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static inline void sleep_us(uint64_t us) { sleep_ns(us * 1000u); }
static inline void sleep_ms(uint64_t ms) { sleep_ns(ms * 1000000u); }

static inline double ms_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e6; }

/* A small deterministic PRNG (splitmix64) so runs are reproducible. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------------------------------ */
/* Watchdogs                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Multiplier for every watchdog, from PMAP_WATCHDOG_SCALE (the harness raises it when the
 * programs run under valgrind). */
static inline unsigned watchdog_scale(void)
{
    const char *s = getenv("PMAP_WATCHDOG_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v > 0 ? (unsigned)v : 1u;
}

static inline void watchdog_fire(void)
{
    static const char msg[] = "watchdog: test hung\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

static inline void watchdog_on_sigalrm(int sig)
{
    (void)sig;
    watchdog_fire();
}

/* alarm()-based watchdog: the whole program must finish within `seconds`. */
static inline void watchdog(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_on_sigalrm;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
    alarm(seconds * watchdog_scale());
}

static inline void *watchdog_thread_main(void *arg)
{
    sleep_ns((uint64_t)(uintptr_t)arg * 1000000000u);
    watchdog_fire();
    return NULL;
}

/* Thread-based watchdog, for programs that use SIGALRM / ITIMER_REAL for something else. */
static inline void watchdog_thread(unsigned seconds)
{
    pthread_t t;
    uintptr_t s = (uintptr_t)seconds * watchdog_scale();
    CHECK(pthread_create(&t, NULL, watchdog_thread_main, (void *)s) == 0, "pthread_create");
    pthread_detach(t);
}

/* ------------------------------------------------------------------------------------ */
/* Drop-counting items and values                                                        */
/* ------------------------------------------------------------------------------------ */

#define ITEM_LIVE 0x17E4A11Eu
#define VALUE_LIVE 0x0A1BE5EDu
#define DEAD 0xDEADDEADu

/* A test payload. Every allocation and release is counted, and a release checks the magic,
 * so an item freed twice (handed back twice) or never (lost) shows up. */
struct item {
    uint32_t magic;
    int32_t fail_code;      /* work returns this when non-zero */
    uint64_t id;            /* the test's own number; usually equals the index */
    uint32_t cost_us;       /* how long work sleeps */
    uint32_t flags;         /* free for each test */
    atomic_uint runs;       /* how many times work was called on it */
    atomic_ullong finished; /* completion sequence number + 1, set by work */
    uint64_t tag;           /* free for each test */
};

struct value {
    uint32_t magic;
    uint64_t id;
    uint32_t worker_hint;
};

struct counters {
    atomic_ullong items_made, items_freed, values_made, values_freed;
};

static struct counters g_count TEST_UNUSED;

static inline struct item *item_new(uint64_t id)
{
    struct item *it = calloc(1, sizeof *it);
    CHECK(it != NULL, "out of memory");
    it->magic = ITEM_LIVE;
    it->id = id;
    atomic_init(&it->runs, 0);
    atomic_init(&it->finished, 0);
    atomic_fetch_add(&g_count.items_made, 1);
    return it;
}

static inline void item_free(struct item *it)
{
    CHECK(it != NULL, "item_free(NULL)");
    CHECK(it->magic == ITEM_LIVE, "item %p released twice or corrupt (magic %#x)", (void *)it,
          it->magic);
    it->magic = DEAD;
    atomic_fetch_add(&g_count.items_freed, 1);
    free(it);
}

static inline struct value *value_new(uint64_t id)
{
    struct value *v = calloc(1, sizeof *v);
    CHECK(v != NULL, "out of memory");
    v->magic = VALUE_LIVE;
    v->id = id;
    atomic_fetch_add(&g_count.values_made, 1);
    return v;
}

static inline void value_free(struct value *v)
{
    CHECK(v != NULL, "value_free(NULL)");
    CHECK(v->magic == VALUE_LIVE, "value %p released twice or corrupt (magic %#x)", (void *)v,
          v->magic);
    v->magic = DEAD;
    atomic_fetch_add(&g_count.values_freed, 1);
    free(v);
}

/* Every item and value made so far has been released exactly once. */
static inline void check_all_released(void)
{
    unsigned long long im = atomic_load(&g_count.items_made);
    unsigned long long ifr = atomic_load(&g_count.items_freed);
    unsigned long long vm = atomic_load(&g_count.values_made);
    unsigned long long vf = atomic_load(&g_count.values_freed);
    CHECK(im == ifr, "items: %llu made, %llu released", im, ifr);
    CHECK(vm == vf, "values: %llu made, %llu released", vm, vf);
}

/* A work function most tests can use: sleeps cost_us, counts the run, fails with
 * fail_code when it is non-zero, else returns a fresh value with the item's id. */
static atomic_ullong g_finish_seq TEST_UNUSED;

static inline int32_t work_basic(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    struct item *it = item;
    CHECK(it != NULL && it->magic == ITEM_LIVE, "work got a bad item %p", item);
    unsigned prev = atomic_fetch_add(&it->runs, 1);
    CHECK(prev == 0, "work called %u times on item %" PRIu64, prev + 1, it->id);
    if (it->cost_us)
        sleep_us(it->cost_us);
    atomic_store(&it->finished, atomic_fetch_add(&g_finish_seq, 1) + 1);
    if (it->fail_code != 0) {
        *result = (void *)0x1; /* must be ignored by pmap: value stays NULL */
        return it->fail_code;
    }
    *result = value_new(it->id);
    return 0;
}

/* Release what a result carries: its item and, for PMAP_ITEM_OK, its value. */
static inline void result_release(const pmap_result *r)
{
    if (r->status == PMAP_ITEM_OK) {
        CHECK(r->value != NULL, "OK result %" PRIu64 " without a value", r->index);
        value_free(r->value);
    } else {
        CHECK(r->value == NULL, "non-OK result %" PRIu64 " (status %d) has a value %p",
              r->index, r->status, r->value);
    }
    if (r->item)
        item_free(r->item);
}

/* ------------------------------------------------------------------------------------ */
/* Exactly-once ledger                                                                   */
/* ------------------------------------------------------------------------------------ */

struct ledger {
    size_t n;
    atomic_uint *counts;
};

static inline void ledger_init(struct ledger *l, size_t n)
{
    l->n = n;
    l->counts = calloc(n ? n : 1, sizeof *l->counts);
    CHECK(l->counts != NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        atomic_init(&l->counts[i], 0);
}

/* Record that `id` came back; fails at once on a duplicate or an unknown id. */
static inline void ledger_mark(struct ledger *l, uint64_t id)
{
    CHECK(id < l->n, "id %" PRIu64 " out of range (ledger of %zu)", id, l->n);
    unsigned prev = atomic_fetch_add(&l->counts[id], 1);
    CHECK(prev == 0, "id %" PRIu64 " came back %u times", id, prev + 1);
}

static inline size_t ledger_total(struct ledger *l)
{
    size_t t = 0;
    for (size_t i = 0; i < l->n; i++)
        t += atomic_load(&l->counts[i]);
    return t;
}

/* Every id in [0, n) came back exactly once. */
static inline void ledger_check_all_once(struct ledger *l)
{
    for (size_t i = 0; i < l->n; i++) {
        unsigned c = atomic_load(&l->counts[i]);
        CHECK(c == 1, "id %zu came back %u times (expected exactly once)", i, c);
    }
}

static inline void ledger_destroy(struct ledger *l)
{
    free(l->counts);
    l->counts = NULL;
    l->n = 0;
}

/* ------------------------------------------------------------------------------------ */
/* A gate that parks work callbacks until the test opens it                              */
/* ------------------------------------------------------------------------------------ */

struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool open;
    int waiting; /* threads currently parked */
    int entered; /* threads that ever arrived */
};

static inline void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->c, NULL);
    g->open = false;
    g->waiting = 0;
    g->entered = 0;
}

/* Park until the gate opens. */
static inline void gate_pass(struct gate *g)
{
    pthread_mutex_lock(&g->m);
    g->entered++;
    g->waiting++;
    pthread_cond_broadcast(&g->c);
    while (!g->open)
        pthread_cond_wait(&g->c, &g->m);
    g->waiting--;
    pthread_mutex_unlock(&g->m);
}

/* Park until the gate opens or the pool is cancelled (polls pmap_is_cancelled). Returns
 * whether it left because of the cancel. */
static inline bool gate_pass_or_cancel(struct gate *g, const pmap_pool *pool)
{
    bool cancelled = false;
    pthread_mutex_lock(&g->m);
    g->entered++;
    g->waiting++;
    pthread_cond_broadcast(&g->c);
    while (!g->open) {
        if (pmap_is_cancelled(pool)) {
            cancelled = true;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g->c, &g->m, &ts);
    }
    g->waiting--;
    pthread_mutex_unlock(&g->m);
    return cancelled;
}

/* Wait until at least n threads are parked at the gate. */
static inline void gate_wait_parked(struct gate *g, int n)
{
    pthread_mutex_lock(&g->m);
    while (g->waiting < n)
        pthread_cond_wait(&g->c, &g->m);
    pthread_mutex_unlock(&g->m);
}

static inline void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->m);
    g->open = true;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

static inline void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->m);
    pthread_cond_destroy(&g->c);
}

/* ------------------------------------------------------------------------------------ */
/* Pools and threads                                                                     */
/* ------------------------------------------------------------------------------------ */

/* Options with the defaults plus the fields nearly every test sets. */
static inline pmap_options test_opts(pmap_work_fn work, void *ctx, uint32_t workers,
                                     uint32_t capacity, bool ordered)
{
    pmap_options o;
    pmap_options_init(&o);
    o.work = work;
    o.ctx = ctx;
    o.workers = workers;
    o.capacity = capacity;
    o.ordered = ordered;
    return o;
}

static inline pmap_pool *test_pool(const pmap_options *o)
{
    pmap_pool *pool = NULL;
    CHECK_OK(pmap_new(o, &pool));
    CHECK(pool != NULL, "pmap_new returned OK without a pool");
    return pool;
}

static inline pmap_stats test_stats(const pmap_pool *pool)
{
    pmap_stats s;
    memset(&s, 0, sizeof s);
    CHECK_OK(pmap_stats_get(pool, &s));
    return s;
}

/* The stats of a finished pool add up. */
static inline void check_stats_settled(const pmap_pool *pool, uint64_t submitted,
                                       uint64_t succeeded, uint64_t failed, uint64_t cancelled)
{
    pmap_stats s = test_stats(pool);
    CHECK(s.submitted == submitted, "stats.submitted %" PRIu64 ", expected %" PRIu64,
          s.submitted, submitted);
    CHECK(s.succeeded == succeeded, "stats.succeeded %" PRIu64 ", expected %" PRIu64,
          s.succeeded, succeeded);
    CHECK(s.failed == failed, "stats.failed %" PRIu64 ", expected %" PRIu64, s.failed, failed);
    CHECK(s.cancelled == cancelled, "stats.cancelled %" PRIu64 ", expected %" PRIu64,
          s.cancelled, cancelled);
    CHECK(s.in_flight == 0, "stats.in_flight %" PRIu64 " on a finished pool", s.in_flight);
    CHECK(s.succeeded + s.failed + s.cancelled == s.submitted, "stats do not add up");
}

static inline pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    CHECK(rc == 0, "pthread_create: %s", strerror(rc));
    return t;
}

static inline void join(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    CHECK(rc == 0, "pthread_join: %s", strerror(rc));
}

/* Whether `word` appears in `text` as a whole identifier (so "pmap_submit" does not match
 * inside "pmap_submit_many"). */
static inline bool contains_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        bool left = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool right = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (left && right)
            return true;
    }
    return false;
}

/* The last call failed with a message that names `fn`. */
#define CHECK_LAST_ERROR_NAMES(fn)                                                         \
    do {                                                                                   \
        const char *msg_ = pmap_last_error();                                              \
        CHECK(msg_ != NULL && msg_[0] != '\0', "pmap_last_error() is empty after %s", fn); \
        CHECK(contains_word(msg_, fn), "pmap_last_error() \"%s\" does not name %s", msg_,  \
              fn);                                                                         \
    } while (0)

/* ------------------------------------------------------------------------------------ */
/* /proc/self/task: thread names and signal masks                                        */
/* ------------------------------------------------------------------------------------ */

struct task_info {
    int tid;
    char comm[32];
};

/* True if thread `tid` has begun to exit (PF_EXITING in /proc/self/task/<tid>/stat) or is
 * already gone. pthread_join returns once the kernel has cleared the thread's tid, which
 * happens partway through its exit: the thread stays listed under /proc/self/task a little
 * longer, until it is reaped. By then it has PF_EXITING set, and it can never run user code
 * again, so a joined thread counts as gone. */
static inline bool task_exiting(int tid)
{
    enum { PF_EXITING_FLAG = 0x4 }; /* include/linux/sched.h */
    char path[96], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    bool read = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!read)
        return true;
    /* The name in parentheses may hold spaces or ')': the fields start after the last ')'.
     * After it: state ppid pgrp session tty_nr tpgid flags. */
    const char *p = strrchr(line, ')');
    CHECK(p != NULL, "unexpected %s: %s", path, line);
    unsigned long flags = 0;
    CHECK(sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1, "unexpected %s: %s", path,
          line);
    return (flags & PF_EXITING_FLAG) != 0;
}

/* Fill `out` (room for `max`) with this process's threads that are not exiting (see
 * task_exiting); returns how many. */
static inline int list_tasks(struct task_info *out, int max)
{
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL, "opendir /proc/self/task: %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] == '.')
            continue;
        char path[sizeof "/proc/self/task//comm" + sizeof e->d_name];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread exited meanwhile */
        out[n].tid = atoi(e->d_name);
        if (!fgets(out[n].comm, sizeof out[n].comm, f))
            out[n].comm[0] = '\0';
        fclose(f);
        out[n].comm[strcspn(out[n].comm, "\n")] = '\0';
        if (task_exiting(out[n].tid))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* Copy at most n - 1 characters of src to dst, always terminated (no truncation warning). */
static inline void copy_truncated(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len > n - 1)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Number of threads whose name starts with `prefix`. */
static inline int count_tasks_named(const char *prefix)
{
    struct task_info t[256];
    int n = list_tasks(t, 256), c = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(t[i].comm, prefix, strlen(prefix)) == 0)
            c++;
    return c;
}

/* The SigBlk mask of thread `tid` (bit sig-1 set = blocked). Returns false if it is gone
 * or exiting. */
static inline bool task_sigblk(int tid, uint64_t *mask)
{
    char path[96], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        /* A thread that is exiting (zombie or dead) has let go of its signal state, and
         * the kernel then reports an empty mask: that thread has nothing to check. */
        if (strncmp(line, "State:", 6) == 0 && strpbrk(line + 6, "ZX") != NULL)
            break;
        if (strncmp(line, "SigBlk:", 7) == 0) {
            *mask = strtoull(line + 7, NULL, 16);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

#endif /* PMAP_C_TESTS_COMMON_H */
