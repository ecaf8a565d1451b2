// oneTBB parallel_pipeline: serial_in_order input filter -> parallel work filter ->
// serial_in_order output filter (serial_out_of_order when unordered), with `tokens` live
// tokens (default 4 x threads). `workers` > 0 runs it in a task_arena of that many
// threads, with global_control raised to match so the arena can get them.
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <memory>
#include <utility>

#include "driver.h"

extern "C" void timer_start(void);
extern "C" void timer_stop(void);

namespace {

using Pair = std::pair<uintptr_t, uintptr_t>;

void pipeline(const bench_params *p, bench_check *c, unsigned threads) {
    size_t tokens = p->tokens ? p->tokens : 4 * threads;
    work_fn fn = p->fn;
    uint64_t next = 0, n = p->n;
    auto out_mode = p->ordered ? tbb::filter_mode::serial_in_order
                               : tbb::filter_mode::serial_out_of_order;
    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, uintptr_t>(tbb::filter_mode::serial_in_order,
                                          [&](tbb::flow_control &fc) -> uintptr_t {
                                              if (next >= n) {
                                                  fc.stop();
                                                  return 0;
                                              }
                                              return ++next;
                                          }) &
            tbb::make_filter<uintptr_t, Pair>(tbb::filter_mode::parallel,
                                              [fn](uintptr_t x) { return Pair(x, fn(x)); }) &
            tbb::make_filter<Pair, void>(out_mode, [c](Pair r) {
                check_one(c, UINT64_MAX, r.first, r.second);
            }));
}

}  // namespace

extern "C" const char *run_tbb(const bench_params *p, bench_check *c) {
    try {
        if (p->workers == 0) {
            unsigned threads = (unsigned)tbb::info::default_concurrency();
            timer_start();
            pipeline(p, c, threads);
            timer_stop();
            return nullptr;
        }
        // Threads persist between runs in one process (the warm-up starts them).
        static std::unique_ptr<tbb::global_control> gc;
        static std::unique_ptr<tbb::task_arena> arena;
        static unsigned arena_threads = 0;
        if (arena_threads != p->workers) {
            arena.reset();
            gc = std::make_unique<tbb::global_control>(
                tbb::global_control::max_allowed_parallelism, p->workers);
            arena = std::make_unique<tbb::task_arena>((int)p->workers, 1);
            arena_threads = p->workers;
        }
        arena->execute([&] {
            timer_start();
            pipeline(p, c, p->workers);
            timer_stop();
        });
        return nullptr;
    } catch (...) {
        return "oneTBB threw an exception";
    }
}
