/*
 * fault_panic: a forced internal panic in every pmap_* export is caught at the ABI boundary
 * (RELIABILITY.md, guarantee 5).
 *
 * Needs the library built with the test-only feature:
 *   CARGO_TARGET_DIR=target/fault cargo build --release --features fault-injection
 * which makes the export named by PMAP_FAULT_PANIC panic inside its boundary (the variable is
 * read once per process, so every case is a fresh process: this program re-executes itself).
 *
 * For each of the 14 exports, a child process (10 s watchdog, killed by the parent after 15 s)
 * runs a whole pool life (options, new, submit, submit_many, stats, next, next_many,
 * status_str, last_error, version, close, cancel, is_cancelled, free with items outstanding),
 * using the other call where one is refused. It asserts that the panicking export returns
 * its documented fallback every time it is called (PMAP_INTERNAL; void: nothing, out-params
 * untouched; bool: false; const char *: a static string), that pmap_last_error() names the
 * export and says "panic", that the process survives and the pool keeps working, and (in
 * the parent) that the panic really happened: the child's stderr has Rust's panic message.
 *
 * A control pass runs the same children against the plain release library with the same
 * PMAP_FAULT_PANIC set: every export must work normally there.
 *
 * Usage: fault_panic --fault-lib DIR [--plain-lib DIR]   (the program is linked without an
 *        rpath; each child gets LD_LIBRARY_PATH=DIR)
 */
#include "rel.h"

static const char *const EXPORTS[] = {
    "pmap_options_init", "pmap_new",          "pmap_submit",     "pmap_submit_many",
    "pmap_close",        "pmap_next",         "pmap_next_many",  "pmap_cancel",
    "pmap_free",         "pmap_stats_get",    "pmap_is_cancelled", "pmap_status_str",
    "pmap_last_error",   "pmap_version",
};
#define N_EXPORTS (sizeof EXPORTS / sizeof EXPORTS[0])

/* ------------------------------------------------------------------------------------ */
/* Child                                                                                 */
/* ------------------------------------------------------------------------------------ */

static const char *g_target;
static bool g_fault;

static bool panics(const char *name) { return g_fault && strcmp(g_target, name) == 0; }

static void check_panic_message(const char *fn)
{
    if (panics("pmap_last_error"))
        return; /* cannot read messages in this case */
    const char *msg = pmap_last_error();
    CHECK(msg != NULL && contains_word(msg, fn) && strstr(msg, "panic") != NULL,
          "after the panic in %s, pmap_last_error() is \"%s\"", fn, msg ? msg : "(NULL)");
}

/* Call `call`; when `fn` is the target it must return PMAP_INTERNAL (twice in a row: the
 * boundary holds every time), else `expected`. Evaluates to whether it panicked. */
#define CALL(fn, call, expected)                                                           \
    __extension__({                                                                        \
        bool p_ = panics(fn);                                                              \
        CHECK_ST(call, p_ ? PMAP_INTERNAL : (expected));                                   \
        if (p_) {                                                                          \
            check_panic_message(fn);                                                       \
            CHECK_ST(call, PMAP_INTERNAL);                                                 \
        }                                                                                  \
        p_;                                                                                \
    })

static atomic_int g_dropped;

static void on_drop(void *ctx, const pmap_result *r)
{
    (void)ctx;
    atomic_fetch_add(&g_dropped, 1);
    result_release(r);
}

static void child(void)
{
    watchdog(10);
    /* options_init: a void export; when it panics it must have done nothing. */
    pmap_options o;
    memset(&o, 0xAB, sizeof o);
    pmap_options_init(&o);
    if (panics("pmap_options_init")) {
        CHECK(o.struct_size == 0xABABABABu, "pmap_options_init wrote after its panic");
        check_panic_message("pmap_options_init");
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        o.ordered = true;
    } else {
        CHECK(o.struct_size == sizeof o, "pmap_options_init: struct_size %u", o.struct_size);
    }
    o.work = work_basic;
    o.workers = 2;
    o.capacity = 16;
    o.on_drop = on_drop;

    pmap_pool *const SENTINEL = (pmap_pool *)(uintptr_t)0x5E17;
    pmap_pool *pool = SENTINEL;
    if (CALL("pmap_new", pmap_new(&o, &pool), PMAP_OK)) {
        CHECK(pool == SENTINEL, "pmap_new wrote *out after its panic");
        CHECK(pmap_version() != NULL && pmap_status_str(PMAP_OK) != NULL, "library unusable");
        printf("child %s: ok\n", g_target);
        return;
    }
    CHECK(pool != SENTINEL && pool != NULL, "no pool");

    /* 4 items by pmap_submit, 4 by pmap_submit_many; whichever panics, the other does it. */
    struct item *items[8];
    for (int i = 0; i < 8; i++)
        items[i] = item_new((uint64_t)i);
    bool submit_panics = CALL("pmap_submit", pmap_submit(pool, items[0], FOREVER), PMAP_OK);
    size_t acc = 0;
    if (submit_panics) {
        CHECK_OK(pmap_submit_many(pool, (void *const *)items, 4, &acc, FOREVER));
        CHECK(acc == 4, "accepted %zu", acc);
    } else {
        for (int i = 1; i < 4; i++)
            CHECK_OK(pmap_submit(pool, items[i], FOREVER));
    }
    if (CALL("pmap_submit_many", pmap_submit_many(pool, (void *const *)&items[4], 4, &acc,
                                                  FOREVER),
             PMAP_OK)) {
        for (int i = 4; i < 8; i++)
            CHECK_OK(pmap_submit(pool, items[i], FOREVER));
    } else {
        CHECK(acc == 4, "accepted %zu", acc);
    }

    pmap_stats s;
    memset(&s, 0x5A, sizeof s);
    if (CALL("pmap_stats_get", pmap_stats_get(pool, &s), PMAP_OK))
        CHECK(s.submitted == 0x5A5A5A5A5A5A5A5Aull, "pmap_stats_get wrote after its panic");
    else
        CHECK(s.submitted == 8, "submitted %" PRIu64, s.submitted);

    /* Take 6 of the 8 results: 3 with pmap_next, 3 with pmap_next_many (or the other). */
    pmap_result r[3];
    uint64_t expect = 0;
    memset(r, 0x5A, sizeof r);
    bool next_panics = CALL("pmap_next", pmap_next(pool, &r[0], FOREVER), PMAP_OK);
    if (next_panics) {
        CHECK(r[0].index == 0x5A5A5A5A5A5A5A5Aull, "pmap_next wrote after its panic");
        for (int i = 0; i < 3; i++) {
            size_t got = 0;
            CHECK_OK(pmap_next_many(pool, r, 1, &got, FOREVER));
            CHECK(got == 1 && r[0].index == expect++, "next_many: index %" PRIu64, r[0].index);
            result_release(&r[0]);
        }
    } else {
        CHECK(r[0].index == expect++, "index %" PRIu64, r[0].index);
        result_release(&r[0]);
        for (int i = 0; i < 2; i++) {
            CHECK_OK(pmap_next(pool, &r[0], FOREVER));
            CHECK(r[0].index == expect++, "index %" PRIu64, r[0].index);
            result_release(&r[0]);
        }
    }
    for (int i = 0; i < 3;) {
        size_t got = 0;
        if (CALL("pmap_next_many", pmap_next_many(pool, r, (size_t)(3 - i), &got, FOREVER),
                 PMAP_OK)) {
            CHECK_OK(pmap_next(pool, &r[0], FOREVER));
            got = 1;
        }
        for (size_t k = 0; k < got; k++) {
            CHECK(r[k].index == expect++ && r[k].status == PMAP_ITEM_OK, "index %" PRIu64,
                  r[k].index);
            result_release(&r[k]);
        }
        i += (int)got;
    }

    /* The const char * exports: a static, non-NULL string either way. */
    const char *str = pmap_status_str(PMAP_CLOSED);
    CHECK(str != NULL, "pmap_status_str returned NULL");
    if (panics("pmap_status_str"))
        check_panic_message("pmap_status_str");
    else
        CHECK(strstr(str, "CLOSED") != NULL || strstr(str, "closed") != NULL,
              "pmap_status_str(PMAP_CLOSED) = \"%s\"", str);
    const char *ver = pmap_version();
    CHECK(ver != NULL, "pmap_version returned NULL");
    if (panics("pmap_version"))
        check_panic_message("pmap_version");
    else
        CHECK(strcmp(ver, PMAP_VERSION_STRING) == 0, "pmap_version() = \"%s\"", ver);
    const char *last = pmap_last_error();
    CHECK(last != NULL, "pmap_last_error returned NULL");
    if (panics("pmap_last_error"))
        CHECK(last[0] == '\0', "pmap_last_error fallback is \"%s\", expected \"\"", last);

    CALL("pmap_close", pmap_close(pool), PMAP_OK);
    bool cancel_panics = CALL("pmap_cancel", pmap_cancel(pool), PMAP_OK);
    bool cancelled = pmap_is_cancelled(pool);
    if (panics("pmap_is_cancelled"))
        CHECK(!cancelled, "pmap_is_cancelled fallback is true");
    else
        CHECK(cancelled == !cancel_panics, "pmap_is_cancelled = %d", cancelled);
    if (panics("pmap_is_cancelled"))
        check_panic_message("pmap_is_cancelled");

    if (CALL("pmap_free", pmap_free(pool), PMAP_OK)) {
        /* The pool is intact (and leaked); it still answers. */
        CHECK_OK(pmap_stats_get(pool, &s));
        CHECK(s.submitted == 8, "submitted %" PRIu64, s.submitted);
    } else {
        CHECK(atomic_load(&g_dropped) == 2, "on_drop ran %d times, expected 2",
              atomic_load(&g_dropped));
        check_all_released();
    }
    printf("child %s (%s library): ok\n", g_target, g_fault ? "fault" : "plain");
}

/* ------------------------------------------------------------------------------------ */
/* Parent                                                                                */
/* ------------------------------------------------------------------------------------ */

/* Run this program as a child for `target` against the library in `lib`. */
static bool spawn_case(const char *self, const char *target, const char *lib, bool fault)
{
    char path[] = "/tmp/pmap-fault-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        setenv("PMAP_FAULT_PANIC", target, 1);
        setenv("LD_LIBRARY_PATH", lib, 1);
        setenv("RUST_BACKTRACE", "0", 1);
        execl(self, self, "--child", target, fault ? "fault" : "plain", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    bool killed = false;
    uint64_t deadline = t0 + (15ull * watchdog_scale()) * 1000000000ull;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            killed = true;
            break;
        }
        sleep_us(500);
    }
    char out[16384];
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    char want[128];
    snprintf(want, sizeof want, "fault injected in %s", target);
    bool panicked = strstr(out, want) != NULL;
    bool ok = !killed && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              (fault ? panicked : strstr(out, "panicked") == NULL);
    printf("  %-8s %-20s %s (%.0f ms)%s\n", fault ? "fault" : "control", target,
           ok ? "ok" : "FAIL", ms_since(t0),
           ok ? (fault ? ": documented fallback, process survived, the panic was real" : "")
              : "");
    if (!ok)
        printf("    %s; child output:\n%s\n",
               killed                  ? "hung: killed"
               : !WIFEXITED(status)    ? strsignal(WTERMSIG(status))
               : WEXITSTATUS(status)   ? "non-zero exit"
               : fault && !panicked    ? "no panic message: the fault was not injected"
                                       : "a panic in the plain library",
               out);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        g_target = argv[2];
        g_fault = strcmp(argv[3], "fault") == 0;
        child();
        return 0;
    }
    const char *fault_lib = NULL, *plain_lib = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = rel_opt(argc, argv, &i, "--fault-lib")))
            fault_lib = v;
        else if ((v = rel_opt(argc, argv, &i, "--plain-lib")))
            plain_lib = v;
        else {
            fprintf(stderr, "fault_panic: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    CHECK(fault_lib != NULL, "--fault-lib DIR is required");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    int passed = 0, failed = 0;
    printf("fault_panic: a panic forced inside each export (library %s)\n", fault_lib);
    for (size_t i = 0; i < N_EXPORTS; i++)
        spawn_case(self, EXPORTS[i], fault_lib, true) ? passed++ : failed++;
    if (plain_lib) {
        printf("fault_panic: control, same PMAP_FAULT_PANIC against %s\n", plain_lib);
        for (size_t i = 0; i < N_EXPORTS; i++)
            spawn_case(self, EXPORTS[i], plain_lib, false) ? passed++ : failed++;
    }
    printf("fault_panic: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
