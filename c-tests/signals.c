/*
 * signals: pmap is safe to embed in a program that uses signals.
 *  - Every pmap thread (workers and the source feeder) has the asynchronous signals
 *    blocked (SigBlk in /proc/self/task/<tid>/status: SIGALRM, SIGINT, SIGTERM and more),
 *    while the caller's own mask is left as it was.
 *  - A SIGALRM storm (setitimer every 100 us, no SA_RESTART) during 10^5 items lands only
 *    on the program's own threads, interrupting every wait inside pmap_submit / pmap_next;
 *    nothing is lost or duplicated, order holds, and timed waits are not cut short.
 * SIGALRM is taken here, so the watchdog is a thread.
 */
#include "common.h"

#include <sys/time.h>

enum { N = 100000 };

static struct gate g_gate;
static atomic_ullong g_signals;
static atomic_int g_on_pmap_thread;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&g_signals, 1);
    /* If the signal ever runs on a pmap thread, remember it (checked by name below). */
    char name[32] = {0};
    if (pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
        strncmp(name, "pmap-", 5) == 0)
        atomic_fetch_add(&g_on_pmap_thread, 1);
}

static int32_t gated_source(void *ctx, void **out)
{
    (void)ctx;
    gate_pass(&g_gate);
    *out = NULL;
    return 0;
}

static int32_t work_gated(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    (void)item;
    gate_pass(&g_gate);
    *result = NULL;
    return 0;
}

static atomic_int g_inits;
static void *count_init(void *ctx, uint32_t id)
{
    (void)ctx;
    (void)id;
    atomic_fetch_add(&g_inits, 1);
    return NULL;
}

static const int ASYNC_SIGNALS[] = {SIGALRM, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
                                    SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGWINCH};

static uint64_t bit(int sig) { return 1ull << (sig - 1); }

static void masks(void)
{
    enum { W = 3 };
    gate_init(&g_gate);
    uint64_t main_before = 0;
    CHECK(task_sigblk(gettid(), &main_before), "cannot read this thread's SigBlk");
    pmap_options o = test_opts(work_gated, NULL, W, 8, true);
    o.source = gated_source;
    o.name = "sig";
    o.worker_init = count_init;
    pmap_pool *pool = test_pool(&o);
    gate_wait_parked(&g_gate, 1); /* the feeder is inside the source */
    while (atomic_load(&g_inits) < W) /* each worker has named itself */
        sleep_ms(1);

    struct task_info t[256];
    int n = list_tasks(t, 256), pmap_threads = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(t[i].comm, "pmap-", 5) != 0)
            continue;
        pmap_threads++;
        uint64_t blk = 0;
        CHECK(task_sigblk(t[i].tid, &blk), "cannot read SigBlk of %s", t[i].comm);
        for (size_t k = 0; k < sizeof ASYNC_SIGNALS / sizeof ASYNC_SIGNALS[0]; k++)
            CHECK(blk & bit(ASYNC_SIGNALS[k]), "thread %s (tid %d) does not block %s (SigBlk %016" PRIx64 ")",
                  t[i].comm, t[i].tid, strsignal(ASYNC_SIGNALS[k]), blk);
        /* Synchronous faults must stay deliverable. */
        CHECK(!(blk & bit(SIGSEGV)) && !(blk & bit(SIGBUS)) && !(blk & bit(SIGFPE)),
              "thread %s blocks a synchronous signal (SigBlk %016" PRIx64 ")", t[i].comm, blk);
    }
    CHECK(pmap_threads == W + 1, "found %d pmap threads, expected %d workers + the feeder",
          pmap_threads, W);
    uint64_t main_after = 0;
    CHECK(task_sigblk(gettid(), &main_after), "cannot read this thread's SigBlk");
    CHECK(main_after == main_before, "pmap_new changed the caller's mask: %016" PRIx64
                                     " -> %016" PRIx64,
          main_before, main_after);
    gate_open(&g_gate);
    pmap_result r;
    CHECK_ST(pmap_next(pool, &r, FOREVER), PMAP_DONE);
    CHECK_OK(pmap_free(pool));
    gate_destroy(&g_gate);
}

static int32_t work_id(void *ctx, void *state, void *item, void **result)
{
    (void)ctx;
    (void)state;
    struct item *it = item;
    unsigned prev = atomic_fetch_add(&it->runs, 1);
    CHECK(prev == 0, "item ran twice");
    if (it->id % 1024 == 0)
        sleep_us(200); /* let signals arrive while workers sleep too */
    *result = (void *)(uintptr_t)(it->id + 1);
    return 0;
}

struct producer {
    pmap_pool *pool;
    struct item *items;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uint64_t i = 0; i < N; i++)
        CHECK_OK(pmap_submit(p->pool, &p->items[i], FOREVER));
    CHECK_OK(pmap_close(p->pool));
    return NULL;
}

static void storm(bool ordered)
{
    struct item *items = calloc(N, sizeof *items);
    for (uint64_t i = 0; i < N; i++) {
        items[i].magic = ITEM_LIVE;
        items[i].id = i;
    }
    pmap_options o = test_opts(work_id, NULL, 2, 16, ordered);
    pmap_pool *pool = test_pool(&o);
    struct producer p = {pool, items};

    struct itimerval it = {{0, 100}, {0, 100}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
    uint64_t signals_before = atomic_load(&g_signals);

    pthread_t t = spawn(produce, &p);
    struct ledger ids;
    ledger_init(&ids, N);
    pmap_result r;
    uint64_t n = 0;
    pmap_status st;
    while ((st = pmap_next(pool, &r, FOREVER)) == PMAP_OK) {
        if (ordered)
            CHECK(r.index == n, "index %" PRIu64 ", expected %" PRIu64, r.index, n);
        CHECK(r.status == PMAP_ITEM_OK, "status %d", r.status);
        struct item *itm = r.item;
        CHECK((uintptr_t)r.value == itm->id + 1, "wrong value");
        ledger_mark(&ids, itm->id);
        n++;
    }
    CHECK_ST(st, PMAP_DONE);
    join(t);

    /* Timed waits are not cut short by the storm. */
    pmap_options o2 = test_opts(work_id, NULL, 1, 2, true);
    pmap_pool *idle = test_pool(&o2);
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = now_ns();
        CHECK_ST(pmap_next(idle, &r, 20 * MS), PMAP_TIMEOUT);
        CHECK(ms_since(t0) >= 15.0, "a 20 ms wait ended after %.2f ms under a signal storm",
              ms_since(t0));
    }
    CHECK_OK(pmap_free(idle));

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    uint64_t signals = atomic_load(&g_signals) - signals_before;

    CHECK(n == N, "%" PRIu64 " of %d items came back", n, N);
    ledger_check_all_once(&ids);
    ledger_destroy(&ids);
    check_stats_settled(pool, N, N, 0, 0);
    CHECK_OK(pmap_free(pool));
    free(items);
    printf("signals: %s: %" PRIu64 " SIGALRMs during %d items\n",
           ordered ? "ordered" : "unordered", signals, N);
    CHECK(signals >= 100, "only %" PRIu64 " signals: the storm did not happen", signals);
    CHECK(atomic_load(&g_on_pmap_thread) == 0, "%d signals ran on pmap threads",
          atomic_load(&g_on_pmap_thread));
}

int main(void)
{
    watchdog_thread(60);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted waits return EINTR */
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
    masks();
    storm(true);
    storm(false);
    printf("signals: ok\n");
    return 0;
}
