/*
 * worker_state: worker_init runs exactly once per worker, on that worker's own thread; its
 * state reaches every work call on that thread and worker_exit, which runs once per worker
 * on the same thread. result.worker names the worker that ran the item. Worker threads are
 * named "pmap-<name>-<id>" (cut to Linux's 15 characters), the name is copied by pmap_new,
 * and no pool thread is left after pmap_free. Init/exit also run for a pool that never
 * gets an item.
 */
#include "common.h"

#include <sys/prctl.h>

enum { MAXW = 8, STATE_MAGIC = 0x57A7E };

struct wstate {
    uint32_t magic;
    uint32_t id;
    pthread_t thread;
    uint64_t work_calls;
    bool exited;
};

struct ctx {
    uint32_t workers;
    const char *name; /* the expected name, kept by the test */
    atomic_int inits[MAXW];
    atomic_int exits[MAXW];
    struct wstate *states[MAXW];
    atomic_ullong total_work;
};

static void expected_name(char *buf, size_t n, const char *name, uint32_t id)
{
    char full[128];
    snprintf(full, sizeof full, "pmap-%s-%u", name, id);
    copy_truncated(buf, n < 16 ? n : 16, full); /* TASK_COMM_LEN - 1 = 15 characters */
}

static void *init(void *ctx_, uint32_t id)
{
    struct ctx *c = ctx_;
    CHECK(id < c->workers, "worker_init with id %u of %u", id, c->workers);
    int prev = atomic_fetch_add(&c->inits[id], 1);
    CHECK(prev == 0, "worker_init ran twice for worker %u", id);
    struct wstate *s = calloc(1, sizeof *s);
    s->magic = STATE_MAGIC;
    s->id = id;
    s->thread = pthread_self();
    c->states[id] = s;
    /* This is the worker's own thread: it carries the worker's name already. */
    char comm[32] = {0}, want[16];
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    expected_name(want, sizeof want, c->name, id);
    CHECK(strcmp(comm, want) == 0, "worker_init %u runs on thread \"%s\", expected \"%s\"", id,
          comm, want);
    return s;
}

static int32_t work(void *ctx_, void *state, void *item, void **result)
{
    struct ctx *c = ctx_;
    struct wstate *s = state;
    CHECK(s != NULL && s->magic == STATE_MAGIC, "work got state %p", state);
    CHECK(pthread_equal(pthread_self(), s->thread),
          "work with worker %u's state runs on another thread", s->id);
    CHECK(!s->exited, "work after worker_exit");
    s->work_calls++;
    atomic_fetch_add(&c->total_work, 1);
    struct item *it = item;
    sleep_us(it->cost_us);
    struct value *v = value_new(it->id);
    v->worker_hint = s->id;
    *result = v;
    return 0;
}

static void worker_exit(void *ctx_, uint32_t id, void *state)
{
    struct ctx *c = ctx_;
    CHECK(id < c->workers, "worker_exit with id %u", id);
    int prev = atomic_fetch_add(&c->exits[id], 1);
    CHECK(prev == 0, "worker_exit ran twice for worker %u", id);
    struct wstate *s = state;
    CHECK(s == c->states[id], "worker_exit %u got state %p, init returned %p", id, state,
          (void *)c->states[id]);
    CHECK(s->id == id, "state of worker %u passed to exit of %u", s->id, id);
    CHECK(pthread_equal(pthread_self(), s->thread), "worker_exit %u on another thread", id);
    s->exited = true;
}

static void check_thread_names(const char *name, uint32_t workers)
{
    struct task_info t[256];
    int n = list_tasks(t, 256);
    bool seen[MAXW] = {false};
    int matched = 0;
    for (uint32_t id = 0; id < workers; id++) {
        char want[16];
        expected_name(want, sizeof want, name, id);
        for (int k = 0; k < n; k++) {
            if (strcmp(t[k].comm, want) == 0 && !seen[id]) {
                seen[id] = true;
                matched++;
                break;
            }
        }
    }
    /* With a long name several workers share the truncated name: count them instead. */
    char prefix[16];
    expected_name(prefix, sizeof prefix, name, 0);
    size_t plen = strlen(prefix);
    if (plen == 15) {
        int same = 0;
        for (int k = 0; k < n; k++)
            if (strncmp(t[k].comm, prefix, plen) == 0)
                same++;
        CHECK(same == (int)workers, "%d threads named \"%s\", expected %u", same, prefix,
              workers);
    } else {
        CHECK(matched == (int)workers, "found %d of %u threads named pmap-%s-<id>", matched,
              workers, name);
    }
}

static void run(const char *name, uint32_t workers, uint64_t items)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.workers = workers;
    c.name = name;
    /* Pass a copy that we overwrite after pmap_new: the pool must have copied it. */
    char scratch[64];
    copy_truncated(scratch, sizeof scratch, name);
    pmap_options o = test_opts(work, &c, workers, 16, false);
    o.worker_init = init;
    o.worker_exit = worker_exit;
    o.name = scratch;
    pmap_pool *pool = test_pool(&o);
    memset(scratch, 'X', sizeof scratch - 1);

    uint64_t per_worker[MAXW] = {0};
    for (uint64_t i = 0; i < items;) {
        struct item *it = item_new(i);
        it->cost_us = i % 4 == 0 ? 300 : 0;
        /* One thread submits and consumes: submit without waiting, drain when full. */
        pmap_status st;
        while ((st = pmap_submit(pool, it, NOWAIT)) == PMAP_TIMEOUT) {
            pmap_result r;
            CHECK_OK(pmap_next(pool, &r, FOREVER));
            struct value *v = r.value;
            CHECK(r.worker < workers, "worker %u", r.worker);
            CHECK(v->worker_hint == r.worker, "result says worker %u, state says %u", r.worker,
                  v->worker_hint);
            per_worker[r.worker]++;
            result_release(&r);
        }
        CHECK_OK(st);
        i++;
    }
    /* A thread names itself when it starts; init runs after that. */
    for (uint32_t id = 0; id < workers; id++)
        while (atomic_load(&c.inits[id]) == 0)
            sleep_ms(1);
    check_thread_names(name, workers);
    CHECK_OK(pmap_close(pool));
    pmap_result r;
    while (pmap_next(pool, &r, FOREVER) == PMAP_OK) {
        struct value *v = r.value;
        CHECK(v->worker_hint == r.worker, "result says worker %u, state says %u", r.worker,
              v->worker_hint);
        per_worker[r.worker]++;
        result_release(&r);
    }
    for (uint32_t id = 0; id < workers; id++)
        CHECK(atomic_load(&c.exits[id]) == 0, "worker_exit %u before pmap_free", id);
    CHECK_OK(pmap_free(pool));

    uint64_t sum = 0;
    for (uint32_t id = 0; id < workers; id++) {
        CHECK(atomic_load(&c.inits[id]) == 1, "worker %u: init ran %d times", id,
              atomic_load(&c.inits[id]));
        CHECK(atomic_load(&c.exits[id]) == 1, "worker %u: exit ran %d times", id,
              atomic_load(&c.exits[id]));
        CHECK(c.states[id]->work_calls == per_worker[id],
              "worker %u: state counted %" PRIu64 " calls, results say %" PRIu64, id,
              c.states[id]->work_calls, per_worker[id]);
        sum += per_worker[id];
        free(c.states[id]);
    }
    CHECK(sum == items, "results %" PRIu64 " of %" PRIu64, sum, items);
    /* Every pool thread was joined. */
    char full[128], prefix[16];
    snprintf(full, sizeof full, "pmap-%s", name);
    copy_truncated(prefix, sizeof prefix, full);
    CHECK(count_tasks_named(prefix) == 0, "threads named %s remain after pmap_free", prefix);
}

/* Without a name the threads are still recognisably pmap's. */
static atomic_int g_unnamed_inits;
static void *count_init(void *ctx, uint32_t id)
{
    (void)ctx;
    (void)id;
    atomic_fetch_add(&g_unnamed_inits, 1);
    return NULL;
}

static void unnamed(void)
{
    int before = count_tasks_named("pmap-");
    pmap_options o = test_opts(work_basic, NULL, 3, 4, true);
    o.worker_init = count_init;
    pmap_pool *pool = test_pool(&o);
    while (atomic_load(&g_unnamed_inits) < 3)
        sleep_ms(1);
    int during = count_tasks_named("pmap-");
    CHECK(during - before == 3, "%d threads named pmap-* for 3 workers", during - before);
    CHECK_OK(pmap_free(pool));
    CHECK(count_tasks_named("pmap-") == before, "pmap-* threads remain after free");
}

int main(void)
{
    watchdog(30);
    run("ws", 3, 300);
    run("ws", 1, 50);
    run("ws", 8, 400);
    run("averyveryverylongname", 4, 100); /* "pmap-averyveryv" after truncation */
    run("abcdefghi", 8, 50);              /* "pmap-abcdefghi-" then the id is cut off */
    run("empty", 4, 0);                   /* init/exit run even without items */
    unnamed();
    check_all_released();
    printf("worker_state: ok\n");
    return 0;
}
