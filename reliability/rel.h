/*
 * Helpers shared by the reliability drivers in reliability/ (on top of c-tests/common.h:
 * CHECK, watchdogs, the splitmix64 PRNG, gates, /proc/self/task helpers).
 *
 * Built by scripts/reliability.sh with -std=c11 -Wall -Wextra -Werror -pthread
 * -Iinclude -Ic-tests, plainly, with -fsanitize=address,undefined, with -fsanitize=thread
 * (nightly tier) and run under valgrind, so nothing here may depend on one of those.
 */
#ifndef PMAP_RELIABILITY_REL_H
#define PMAP_RELIABILITY_REL_H

#include "common.h"

#include <fcntl.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------------------ */
/* Command-line options: --name value or --name=value                                    */
/* ------------------------------------------------------------------------------------ */

/* If argv[*i] is --name (or --name=v), return its value and advance *i; else NULL. */
static inline const char *rel_opt(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    CHECK(*i + 1 < argc, "option %s needs a value", name);
    *i += 1;
    return argv[*i];
}

/* Parse an unsigned number; accepts 1e7-style and k/M/G suffixes for readability. */
static inline uint64_t rel_parse_u64(const char *s)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    CHECK(errno == 0 && end != s && d >= 0, "not a number: \"%s\"", s);
    switch (*end) {
    case 'k': d *= 1e3; end++; break;
    case 'M': d *= 1e6; end++; break;
    case 'G': d *= 1e9; end++; break;
    default: break;
    }
    CHECK(*end == '\0', "not a number: \"%s\"", s);
    /* Seeds are exact 64-bit integers: parse integers without going through double. */
    if (strspn(s, "0123456789") == strlen(s)) {
        unsigned long long v = strtoull(s, NULL, 10);
        return (uint64_t)v;
    }
    return (uint64_t)d;
}

/* ------------------------------------------------------------------------------------ */
/* Running one test in its own process, under a watchdog                                 */
/* ------------------------------------------------------------------------------------ */

/* Run fn() in a forked child that must exit 0 within `limit_s` seconds (times
 * PMAP_WATCHDOG_SCALE). The child also arms alarm() so a hang inside it ends it with status
 * 3 even if the parent were gone. Returns true when the child passed; prints a line either
 * way. The caller must not hold pmap pools or other threads' locks across the fork. */
static inline bool rel_run_isolated(const char *name, void (*fn)(void), unsigned limit_s)
{
    fflush(stdout);
    fflush(stderr);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        watchdog(limit_s);
        fn();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    uint64_t deadline = t0 + ((uint64_t)limit_s * watchdog_scale() + 2) * 1000000000ull;
    int status = 0;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        CHECK(w >= 0, "waitpid: %s", strerror(errno));
        if (w == pid)
            break;
        if (now_ns() > deadline) {
            kill(pid, SIGKILL);
            CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
            killed = true;
            break;
        }
        sleep_us(500);
    }
    double ms = ms_since(t0);
    bool ok = !killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok)
        printf("  %-44s ok   %8.1f ms\n", name, ms);
    else if (killed)
        printf("  %-44s FAIL hung: killed after %.1f ms\n", name, ms);
    else if (WIFEXITED(status))
        printf("  %-44s FAIL exit status %d%s after %.1f ms\n", name, WEXITSTATUS(status),
               WEXITSTATUS(status) == 3 ? " (its watchdog fired)" : "", ms);
    else
        printf("  %-44s FAIL killed by signal %d (%s) after %.1f ms\n", name,
               WTERMSIG(status), strsignal(WTERMSIG(status)), ms);
    fflush(stdout);
    return ok;
}

/* ------------------------------------------------------------------------------------ */
/* Timing                                                                                */
/* ------------------------------------------------------------------------------------ */

/* A limit in milliseconds, scaled by PMAP_WATCHDOG_SCALE for slow tools (valgrind). */
static inline double rel_limit_ms(double ms) { return ms * (double)watchdog_scale(); }

/* CHECK that `call` returned within `limit` ms; evaluates to its status. */
#define REL_TIMED(call, limit_ms, what)                                                    \
    __extension__({                                                                        \
        uint64_t t0_ = now_ns();                                                           \
        pmap_status st_ = (call);                                                          \
        double ms_ = ms_since(t0_);                                                        \
        CHECK(ms_ < rel_limit_ms(limit_ms), "%s took %.1f ms (limit %.0f ms)", what, ms_,  \
              rel_limit_ms(limit_ms));                                                     \
        st_;                                                                               \
    })

/* Atomically raise *m to at least v. */
static inline void rel_atomic_max(atomic_ullong *m, unsigned long long v)
{
    unsigned long long cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

#endif /* PMAP_RELIABILITY_REL_H */
