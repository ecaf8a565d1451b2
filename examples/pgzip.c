/*
 * pgzip: a parallel gzip built on pmap.
 *
 *   pgzip [-1..-9] [-b SIZE] [-p N] [-C N] [-f] [-q] [FILE]  > out.gz
 *
 * The input (FILE, or stdin when FILE is absent or "-") is cut into fixed blocks; each
 * block is compressed on its own as a complete gzip member, and the members are written
 * to stdout in input order. A concatenation of gzip members is a valid gzip file (RFC
 * 1952, section 2.2), so `gunzip` restores the exact input.
 *
 * How the work is split, and why:
 *   - pmap's feeder thread calls read_block() (the pool's `source`): reading happens on a
 *     thread of its own, overlapping with compression and with writing, and the source
 *     is only asked for a block when there is room in the pool's window, which is what
 *     bounds memory.
 *   - pmap's workers call compress_block(), each with its own z_stream (worker_init), so
 *     deflate state is allocated once per worker, not once per block.
 *   - the main thread only takes results, in order, with pmap_next_many, and writes them.
 *
 * Memory: at most `capacity` blocks are in flight (the block the feeder is reading
 * counts), plus the few the main thread holds while writing (RESULT_BATCH). A block is
 * one input buffer of SIZE bytes and one output buffer of deflateBound(SIZE) bytes, and
 * blocks are recycled through a free list, so after warm-up the steady state allocates
 * nothing.
 *
 * Exit status: 0 on success, 1 on any error (read, write, compression), 2 on bad usage.
 */

#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT; also getopt and sigaction */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "pmap.h"

/* Default block: large enough that what independent blocks cost (the deflate window
 * starts empty at each block, plus 20 bytes of gzip header and trailer) stays small:
 * measured on 64 MiB of text, 1 MiB blocks make the output 0.16% larger than one
 * single stream, 128 KiB blocks 1.2% (pigz uses 128 KiB blocks but primes each with the
 * previous 32 KiB, which pgzip's independent blocks cannot). Small enough that a window
 * of a few blocks per worker stays a few MiB. */
#define DEFAULT_BLOCK_SIZE ((size_t)1 << 20)

/* zlib counts input and output in uInt; keep a block (and its deflateBound) far from
 * that limit. */
#define MAX_BLOCK_SIZE ((size_t)1 << 30)

/* In-flight blocks per worker (see choose_capacity). */
#define BLOCKS_PER_WORKER 4

/* Results taken per pmap_next_many call: fewer wake-ups of the main thread when several
 * blocks finish together, and small, so the blocks held outside the pool's window while
 * they are written stay few. */
#define RESULT_BATCH 4

/* How long the source waits for input before checking whether the run was abandoned
 * (see read_full). */
#define POLL_INTERVAL_MS 100

/* Error codes of the work function (pmap reports them in pmap_result.error). Source
 * errors are reported as -errno instead, so the two kinds cannot be confused. */
enum {
    WORK_NO_STREAM = 1, /* worker_init could not set up zlib for this worker */
    WORK_NO_MEMORY = 2, /* the output buffer could not be allocated */
    WORK_DEFLATE = 3,   /* deflate did not finish the member (cannot happen with a
                           deflateBound-sized buffer, checked anyway) */
};

/* One block of input and, once compressed, its gzip member. Owned by whoever holds it:
 * the free list, the feeder (while reading), the pool (in flight), or the main thread
 * (while writing). */
typedef struct block {
    struct block *next;  /* free-list link */
    unsigned char *in;   /* input, block_size bytes of room */
    size_t in_len;       /* input bytes in this block */
    unsigned char *out;  /* the compressed member */
    size_t out_len;      /* bytes of `out` used */
    size_t out_cap;      /* bytes of `out` allocated */
} block;

/* Shared by every callback (pmap_options.ctx). Fields are grouped by which thread may
 * touch them, since the pool's threads run concurrently with main. */
typedef struct pgzip {
    /* Read-only after start. */
    size_t block_size;
    int level;
    int in_fd;
    bool in_pollable; /* a pipe, socket or terminal: reads may block indefinitely */

    /* Feeder thread only (the source is only ever called from there). */
    bool eof;         /* read() returned 0: never read again (a terminal would block) */
    bool emitted_any; /* at least one block was produced */

    /* Set by main when it abandons the run; read by the feeder so a source blocked on an
     * idle pipe gives up instead of holding up pmap_free. */
    atomic_bool stop;

    /* Recycled blocks: pushed by main after writing, popped by the feeder. */
    pthread_mutex_t free_lock;
    block *free_list;
} pgzip;

/* ---------------------------------------------------------------------------------- */
/* Blocks                                                                             */

static void block_destroy(block *b) {
    if (b != NULL) {
        free(b->in);
        free(b->out);
        free(b);
    }
}

/* A block with room for block_size input bytes: a recycled one when there is one. */
static block *block_get(pgzip *z) {
    pthread_mutex_lock(&z->free_lock);
    block *b = z->free_list;
    if (b != NULL) {
        z->free_list = b->next;
    }
    pthread_mutex_unlock(&z->free_lock);
    if (b != NULL) {
        return b;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->in = malloc(z->block_size);
    if (b->in == NULL) {
        free(b);
        return NULL;
    }
    /* `out` is sized by the worker, which knows deflateBound for the actual length. */
    return b;
}

static void block_put(pgzip *z, block *b) {
    pthread_mutex_lock(&z->free_lock);
    b->next = z->free_list;
    z->free_list = b;
    pthread_mutex_unlock(&z->free_lock);
}

static void free_list_destroy(pgzip *z) {
    block *b = z->free_list;
    while (b != NULL) {
        block *next = b->next;
        block_destroy(b);
        b = next;
    }
    z->free_list = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Source: runs on pmap's feeder thread                                               */

/* Fill `buf` with up to `len` bytes, stopping early only at end of input. Returns 0 or an
 * errno value. */
static int read_full(pgzip *z, unsigned char *buf, size_t len, size_t *got) {
    size_t have = 0;
    while (have < len && !z->eof) {
        if (z->in_pollable) {
            /* Wait in short slices: if main gives up (a write failed), a source stuck on
             * an idle pipe would otherwise hold pmap_free (which waits for the feeder's
             * current call) until the writer at the other end sends data. */
            struct pollfd p = {.fd = z->in_fd, .events = POLLIN};
            int ready = poll(&p, 1, POLL_INTERVAL_MS);
            if (atomic_load(&z->stop)) {
                return ECANCELED;
            }
            if (ready < 0 && errno != EINTR) {
                return errno;
            }
            if (ready <= 0) {
                continue;
            }
        }
        size_t want = len - have;
        if (want > SSIZE_MAX) {
            want = SSIZE_MAX;
        }
        ssize_t n = read(z->in_fd, buf + have, want);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            z->eof = true;
        }
        have += (size_t)n;
    }
    *got = have;
    return 0;
}

/* pmap source: 1 and the next block, 0 at end of input, -errno on a read error (pmap
 * then ends the input and delivers the error in order, after every earlier block). */
static int32_t read_block(void *ctx, void **item) {
    pgzip *z = ctx;
    block *b = block_get(z);
    if (b == NULL) {
        return -ENOMEM;
    }
    size_t got = 0;
    int err = read_full(z, b->in, z->block_size, &got);
    if (err != 0) {
        block_put(z, b);
        return -err;
    }
    /* An empty input still gets one (empty) member: a zero-byte file is not valid gzip,
     * and `gzip` itself writes a member for empty input too. */
    if (got == 0 && z->emitted_any) {
        block_put(z, b);
        return 0;
    }
    z->emitted_any = true;
    b->in_len = got;
    *item = b;
    return 1;
}

/* ---------------------------------------------------------------------------------- */
/* Workers                                                                            */

/* One deflate stream per worker, reset for each block: deflateInit2 allocates about
 * 256 KiB, which is worth doing once rather than per block. On failure the worker gets
 * NULL and compress_block reports WORK_NO_STREAM for every block it takes. */
static void *worker_init(void *ctx, uint32_t worker_id) {
    (void)worker_id;
    pgzip *z = ctx;
    z_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    /* windowBits 15 + 16 = 31: a gzip header and trailer (CRC-32, length) around the
     * deflate data; memLevel 8 and the default strategy match gzip and pigz. */
    if (deflateInit2(s, z->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(s);
        return NULL;
    }
    return s;
}

static void worker_exit(void *ctx, uint32_t worker_id, void *state) {
    (void)ctx;
    (void)worker_id;
    z_stream *s = state;
    if (s != NULL) {
        deflateEnd(s);
        free(s);
    }
}

/* pmap work function: compress one block into one complete gzip member, in place in the
 * block (the result value is the block itself). */
static int32_t compress_block(void *ctx, void *state, void *item, void **result) {
    (void)ctx;
    z_stream *s = state;
    block *b = item;
    if (s == NULL) {
        return WORK_NO_STREAM;
    }
    if (deflateReset(s) != Z_OK) {
        return WORK_DEFLATE;
    }
    /* deflateBound covers the gzip wrapper for this stream, so one deflate(Z_FINISH) call
     * always completes the member. */
    size_t bound = deflateBound(s, (uLong)b->in_len);
    if (b->out_cap < bound) {
        unsigned char *out = realloc(b->out, bound);
        if (out == NULL) {
            return WORK_NO_MEMORY;
        }
        b->out = out;
        b->out_cap = bound;
    }
    s->next_in = b->in;
    s->avail_in = (uInt)b->in_len;
    s->next_out = b->out;
    s->avail_out = (uInt)bound;
    if (deflate(s, Z_FINISH) != Z_STREAM_END) {
        return WORK_DEFLATE;
    }
    b->out_len = bound - s->avail_out;
    *result = b;
    return 0;
}

/* pmap on_drop: blocks the pool still held when it was freed (after an error). `value`,
 * when set, is the same block as `item`, so only `item` is freed. */
static void drop_block(void *ctx, const pmap_result *r) {
    (void)ctx;
    block_destroy(r->item);
}

/* ---------------------------------------------------------------------------------- */
/* Main thread                                                                        */

static int write_all(int fd, const unsigned char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *work_error_str(int32_t code) {
    switch (code) {
    case WORK_NO_STREAM:
        return "zlib could not be initialised for a worker (out of memory?)";
    case WORK_NO_MEMORY:
        return "out of memory for a compressed block";
    case WORK_DEFLATE:
        return "deflate failed";
    default:
        return "unknown error";
    }
}

/* Bytes through the main thread, for the summary. */
typedef struct totals {
    uint64_t in, out;
} totals;

/* Write one result. Returns 0, or 1 after printing why the run must stop. */
static int handle_result(pgzip *z, const char *path, const pmap_result *r, totals *t) {
    block *b = r->item;
    int rc = 0;
    switch (r->status) {
    case PMAP_ITEM_OK: {
        int err = write_all(STDOUT_FILENO, b->out, b->out_len);
        if (err != 0) {
            fprintf(stderr, "pgzip: write error: %s\n", strerror(err));
            rc = 1;
            break;
        }
        t->in += b->in_len;
        t->out += b->out_len;
        break;
    }
    case PMAP_ITEM_SOURCE_FAILED:
        fprintf(stderr, "pgzip: %s: read error: %s\n", path, strerror(-r->error));
        rc = 1;
        break;
    case PMAP_ITEM_FAILED:
        fprintf(stderr, "pgzip: block %llu: %s\n", (unsigned long long)r->index,
                work_error_str(r->error));
        rc = 1;
        break;
    default: /* PMAP_ITEM_CANCELLED: cannot happen, we cancel only after write_results */
        fprintf(stderr, "pgzip: block %llu: cancelled\n", (unsigned long long)r->index);
        rc = 1;
        break;
    }
    if (b != NULL) {
        block_put(z, b); /* back to the feeder; a source failure has no block */
    }
    return rc;
}

/* The main thread's whole job: take results in order and write them, until the end of
 * input (0) or the first error (1). Blocks still in the pool are then the caller's
 * pmap_free's business (on_drop). */
static int write_results(pmap_pool *pool, pgzip *z, const char *path, totals *t) {
    pmap_result batch[RESULT_BATCH];
    for (;;) {
        size_t got = 0;
        pmap_status rc = pmap_next_many(pool, batch, RESULT_BATCH, &got, -1);
        if (rc == PMAP_DONE) {
            return 0;
        }
        if (rc != PMAP_OK) {
            fprintf(stderr, "pgzip: pmap_next_many: %s\n", pmap_last_error());
            return 1;
        }
        for (size_t i = 0; i < got; i++) {
            if (handle_result(z, path, &batch[i], t) != 0) {
                /* The rest of this batch was handed back to us: free it here. */
                for (i++; i < got; i++) {
                    block_destroy(batch[i].item);
                }
                return 1;
            }
        }
    }
}

static void print_stats(const totals *t, double wall, int level, size_t block_size,
                        uint32_t capacity, const pmap_stats *s) {
    double mb_in = (double)t->in / 1e6, mb_out = (double)t->out / 1e6;
    double secs = wall > 0 ? wall : 1e-9;
    double elapsed = (double)s->elapsed_ns / 1e9;
    double busy = (double)s->busy_ns / 1e9;
    /* busy / (elapsed x workers): how much of the time the workers spent compressing;
     * well below 100% means they waited for input, for output, or for a CPU. */
    double util = s->workers && elapsed > 0 ? 100.0 * busy / (elapsed * s->workers) : 0.0;
    fprintf(stderr,
            "pgzip: %.1f MB in, %.1f MB out (ratio %.3f) in %.3f s: %.1f MB/s in, %.1f MB/s out\n"
            "pgzip: level %d, block %zu bytes, capacity %u blocks\n"
            "pmap:  workers %u, submitted %llu, succeeded %llu, failed %llu, cancelled %llu,"
            " busy %.3f s, elapsed %.3f s, worker utilisation %.0f%%\n",
            mb_in, mb_out, t->in ? (double)t->out / (double)t->in : 0.0, wall, mb_in / secs,
            mb_out / secs, level, block_size, capacity, s->workers,
            (unsigned long long)s->submitted, (unsigned long long)s->succeeded,
            (unsigned long long)s->failed, (unsigned long long)s->cancelled, busy, elapsed,
            util);
}

/* CPUs this process may run on. Used only to size the window before the pool exists;
 * pmap also honours a cgroup CPU quota, so it may start fewer workers than this, which
 * only makes the window a little roomier than needed. */
static unsigned cpus_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        return (unsigned)CPU_COUNT(&set);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The window (pmap capacity), in blocks. pmap's default (max(4096, 256 x workers)) is
 * meant for small items; here an item is about two block sizes of memory, so that
 * default would hold 8 GiB. Throughput needs one block running on each worker, about
 * one more per worker queued so a worker never waits for the feeder, and a slot for the
 * block the feeder is reading (its reservation counts against capacity). Measured with
 * 2 workers on 2 CPUs, 64 MiB of text: capacity 1 takes 2.6 s, 2 takes 1.37 s, and
 * anything from 3 to 32 takes 1.26-1.30 s. 4 x workers is about twice the smallest
 * window at full speed; the slack lets the other workers go on when one is preempted
 * or its block is slow, since in ordered mode finished blocks behind a slow head block
 * keep their slots until it is written. Memory stays about 8 x workers x block size. */
static uint32_t choose_capacity(uint32_t workers) {
    if (workers == 0) {
        workers = cpus_available();
    }
    return workers * BLOCKS_PER_WORKER;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse a size with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        return false;
    }
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default:
        return false;
    }
    if (*end != '\0' || v > (ULLONG_MAX >> shift)) {
        return false;
    }
    *out = (size_t)(v << shift);
    return true;
}

static bool parse_uint(const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: pgzip [-1..-9] [-b SIZE] [-p N] [-C N] [-f] [-q] [FILE] > FILE.gz\n"
            "Compress FILE (or stdin) to stdout as gzip, in parallel.\n"
            "  -1..-9   compression level (default 6)\n"
            "  -b SIZE  block size, e.g. 128K, 1M (default 1M); each block is one gzip member\n"
            "  -p N     worker threads (default 0 = every CPU this process may use)\n"
            "  -C N     blocks in flight (default %d x workers)\n"
            "  -f       write to stdout even when it is a terminal\n"
            "  -q       do not print statistics to stderr\n",
            BLOCKS_PER_WORKER);
}

int main(int argc, char **argv) {
    int level = 6; /* gzip's and pigz's default */
    size_t block_size = DEFAULT_BLOCK_SIZE;
    uint32_t workers = 0;
    uint32_t capacity = 0;
    bool force = false;
    bool quiet = false;

    int opt;
    while ((opt = getopt(argc, argv, "123456789b:p:C:fqh")) != -1) {
        switch (opt) {
        case '1': case '2': case '3': case '4': case '5':
        case '6': case '7': case '8': case '9':
            level = opt - '0';
            break;
        case 'b':
            if (!parse_size(optarg, &block_size) || block_size == 0 ||
                block_size > MAX_BLOCK_SIZE) {
                fprintf(stderr, "pgzip: -b: a size from 1 to 1G, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            if (!parse_uint(optarg, &workers) || workers > 4096) {
                fprintf(stderr, "pgzip: -p: a thread count from 0 to 4096, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'C':
            if (!parse_uint(optarg, &capacity) || capacity == 0 || capacity > (1u << 20)) {
                fprintf(stderr, "pgzip: -C: a block count from 1 to 1048576, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'f':
            force = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "pgzip: one input file at most\n");
        usage(stderr);
        return 2;
    }
    if (!force && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "pgzip: compressed data not written to a terminal (use -f to force)\n");
        return 2;
    }
    if (capacity == 0) {
        capacity = choose_capacity(workers);
    }

    const char *path = optind < argc ? argv[optind] : "-";
    int in_fd = STDIN_FILENO;
    if (strcmp(path, "-") != 0) {
        in_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in_fd < 0) {
            fprintf(stderr, "pgzip: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    struct stat st;
    bool pollable = fstat(in_fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);

    /* A closed reader (`pgzip | head -c 10`) must become an EPIPE write error that we
     * handle (cancel, free, exit 1), not a signal that kills the process mid-free. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    pgzip z = {
        .block_size = block_size,
        .level = level,
        .in_fd = in_fd,
        .in_pollable = pollable,
        .free_lock = PTHREAD_MUTEX_INITIALIZER,
    };
    atomic_init(&z.stop, false);

    pmap_options opts;
    pmap_options_init(&opts);
    opts.workers = workers;
    opts.capacity = capacity;
    opts.ordered = true; /* gzip members must follow input order */
    opts.work = compress_block;
    opts.ctx = &z;
    opts.worker_init = worker_init;
    opts.worker_exit = worker_exit;
    opts.source = read_block;
    opts.on_drop = drop_block;
    opts.name = "pgzip";

    double t0 = now_seconds();
    pmap_pool *pool = NULL;
    pmap_status rc = pmap_new(&opts, &pool);
    if (rc != PMAP_OK) {
        fprintf(stderr, "pgzip: pmap_new: %s\n", pmap_last_error());
        if (in_fd != STDIN_FILENO) {
            close(in_fd);
        }
        return 1;
    }

    totals t = {0};
    int exit_code = write_results(pool, &z, path, &t);
    pmap_stats stats;
    bool have_stats = pmap_stats_get(pool, &stats) == PMAP_OK;
    double wall = now_seconds() - t0;

    if (exit_code != 0) {
        /* Stop the feeder (see read_full) and the workers; pmap_free below hands every
         * block still in the pool to drop_block. */
        atomic_store(&z.stop, true);
        pmap_cancel(pool);
    }
    pmap_free(pool);
    free_list_destroy(&z);
    if (in_fd != STDIN_FILENO) {
        close(in_fd);
    }

    if (!quiet && have_stats) {
        print_stats(&t, wall, level, block_size, capacity, &stats);
    }
    return exit_code;
}
