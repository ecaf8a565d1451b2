// Per-item overhead of the C++ binding versus the raw C API, same trivial workload, same run.
//
// Every variant maps N integers through the same trivial function on a fresh pool with the
// same options, and the consumer sums the results (checked against the expected sum). Each
// C++ shape is paired with the C API driven the same way, so the difference is what the
// binding adds (heap items, exception capture, type erasure):
//
//   stream : one producer thread submits (blocking), the calling thread consumes
//   map    : the calling thread submits with timeout 0 and drains on PMAP_TIMEOUT (unordered)
//   imap   : the pool's feeder thread pulls from a source, the calling thread consumes
//
// Variants run round-robin, RUNS rounds, so drift on a shared machine hits all of them
// alike; the table shows the median ns/item of each.
//
// Usage: bench_overhead [items] [runs] [workers] [filter]
//   defaults: 200000 items, 7 runs, 0 workers (= one per CPU); `filter` keeps only the
//   variants whose name contains it (the summary table needs all of them).

#include <pmap.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

std::uint64_t work_fn(std::uint64_t x) { return x * 2654435761u ^ (x >> 3); }

std::uint32_t g_workers = 0;
std::size_t g_items = 200000;

pmap_options c_opts() {
  pmap_options o;
  pmap_options_init(&o);
  o.workers = g_workers;
  return o;
}

int32_t c_work(void *, void *, void *item, void **result) {
  *result = reinterpret_cast<void *>(
      static_cast<uintptr_t>(work_fn(reinterpret_cast<uintptr_t>(item))));
  return 0;
}

void die(const char *what, pmap_status st) {
  std::fprintf(stderr, "%s: %s (%s)\n", what, pmap_status_str(st), pmap_last_error());
  std::exit(1);
}

// --- C API ---------------------------------------------------------------------------------

// One thread: submit one at a time with timeout 0; on PMAP_TIMEOUT take one result.
std::uint64_t c_single_thread() {
  pmap_options o = c_opts();
  o.work = c_work;
  pmap_pool *p = nullptr;
  if (pmap_status st = pmap_new(&o, &p)) die("pmap_new", st);
  std::uint64_t sum = 0;
  pmap_result r;
  for (std::size_t i = 0; i < g_items;) {
    pmap_status st = pmap_submit(p, reinterpret_cast<void *>(static_cast<uintptr_t>(i)), 0);
    if (st == PMAP_OK) {
      ++i;
    } else if (st == PMAP_TIMEOUT) {
      if ((st = pmap_next(p, &r, -1)) != PMAP_OK) die("pmap_next", st);
      sum += reinterpret_cast<uintptr_t>(r.value);
    } else {
      die("pmap_submit", st);
    }
  }
  pmap_close(p);
  while (pmap_next(p, &r, -1) == PMAP_OK) sum += reinterpret_cast<uintptr_t>(r.value);
  pmap_free(p);
  return sum;
}

// One thread, batched: pmap_submit_many with timeout 0, drain with pmap_next_many.
// Unordered, as pmap::map runs it (its results go straight to their index): since the
// ordered pool keeps results in place (pmap 0.1, session 7) the two modes no longer cost
// the same, and the pair must differ only by what the binding adds.
std::uint64_t c_single_thread_batched() {
  pmap_options o = c_opts();
  o.ordered = false;
  o.work = c_work;
  pmap_pool *p = nullptr;
  if (pmap_status st = pmap_new(&o, &p)) die("pmap_new", st);
  std::uint64_t sum = 0;
  constexpr std::size_t B = 64;
  void *items[B];
  pmap_result rs[B];
  std::size_t i = 0;
  bool open = true;
  for (;;) {
    while (i < g_items) {
      std::size_t k = std::min(B, g_items - i), acc = 0;
      for (std::size_t j = 0; j < k; ++j) items[j] = reinterpret_cast<void *>(i + j);
      pmap_status st = pmap_submit_many(p, items, k, &acc, 0);
      i += acc;
      if (st == PMAP_TIMEOUT) break;
      if (st != PMAP_OK) die("pmap_submit_many", st);
    }
    if (open && i == g_items) {
      pmap_close(p);
      open = false;
    }
    std::size_t got = 0;
    pmap_status st = pmap_next_many(p, rs, B, &got, -1);
    if (st == PMAP_DONE) break;
    if (st != PMAP_OK) die("pmap_next_many", st);
    for (std::size_t j = 0; j < got; ++j) sum += reinterpret_cast<uintptr_t>(rs[j].value);
  }
  pmap_free(p);
  return sum;
}

// A producer thread submits (blocking), this thread consumes one at a time.
std::uint64_t c_two_threads() {
  pmap_options o = c_opts();
  o.work = c_work;
  pmap_pool *p = nullptr;
  if (pmap_status st = pmap_new(&o, &p)) die("pmap_new", st);
  std::thread producer([p] {
    for (std::size_t i = 0; i < g_items; ++i) {
      if (pmap_status st = pmap_submit(p, reinterpret_cast<void *>(i), -1)) die("pmap_submit", st);
    }
    pmap_close(p);
  });
  std::uint64_t sum = 0;
  pmap_result r;
  while (pmap_next(p, &r, -1) == PMAP_OK) sum += reinterpret_cast<uintptr_t>(r.value);
  producer.join();
  pmap_free(p);
  return sum;
}

// The pool's feeder pulls from a source; this thread consumes one at a time.
struct c_counter {
  std::size_t next = 0;
};

int32_t c_source(void *ctx, void **item) {
  auto *c = static_cast<c_counter *>(ctx);
  if (c->next == g_items) return 0;
  *item = reinterpret_cast<void *>(c->next++);
  return 1;
}

std::uint64_t c_source_mode() {
  c_counter counter;
  pmap_options o = c_opts();
  o.work = c_work;
  o.source = c_source;
  o.ctx = &counter;
  pmap_pool *p = nullptr;
  if (pmap_status st = pmap_new(&o, &p)) die("pmap_new", st);
  std::uint64_t sum = 0;
  pmap_result r;
  while (pmap_next(p, &r, -1) == PMAP_OK) sum += reinterpret_cast<uintptr_t>(r.value);
  pmap_free(p);
  return sum;
}

// Source mode, drained with pmap_next_many.
std::uint64_t c_source_mode_batched() {
  c_counter counter;
  pmap_options o = c_opts();
  o.work = c_work;
  o.source = c_source;
  o.ctx = &counter;
  pmap_pool *p = nullptr;
  if (pmap_status st = pmap_new(&o, &p)) die("pmap_new", st);
  std::uint64_t sum = 0;
  pmap_result rs[16];
  std::size_t got = 0;
  while (pmap_next_many(p, rs, 16, &got, -1) == PMAP_OK) {
    for (std::size_t j = 0; j < got; ++j) sum += reinterpret_cast<uintptr_t>(rs[j].value);
  }
  pmap_free(p);
  return sum;
}

// --- C++ binding -----------------------------------------------------------------------------

pmap::options cpp_opts() {
  pmap::options o;
  o.workers = g_workers;
  return o;
}

std::vector<std::uint64_t> g_input;

std::uint64_t cpp_map() {
  auto out = pmap::map(g_input, [](std::uint64_t x) { return work_fn(x); }, cpp_opts());
  std::uint64_t sum = 0;
  for (auto v : out) sum += v;
  return sum;
}

std::uint64_t cpp_imap() {
  std::uint64_t sum = 0;
  for (auto v : pmap::imap(g_input, [](std::uint64_t x) { return work_fn(x); }, cpp_opts())) sum += v;
  return sum;
}

std::uint64_t cpp_stream() {
  pmap::stream<std::uint64_t, std::uint64_t> s([](std::uint64_t x) { return work_fn(x); },
                                               cpp_opts());
  std::thread producer([&s] {
    for (std::size_t i = 0; i < g_items; ++i) s.submit(i);
    s.close();
  });
  std::uint64_t sum = 0;
  while (auto r = s.next()) sum += r->value();
  producer.join();
  return sum;
}

struct variant {
  const char *name;
  std::function<std::uint64_t()> run;
  std::vector<double> ns_per_item;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1) g_items = std::strtoull(argv[1], nullptr, 10);
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  if (argc > 3) g_workers = static_cast<std::uint32_t>(std::atoi(argv[3]));
  g_input.resize(g_items);
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < g_items; ++i) {
    g_input[i] = i;
    expected += work_fn(i);
  }

  std::vector<variant> vs = {
      {"C API: submit/next, one thread", c_single_thread, {}},
      {"C API: submit_many/next_many, one thread, unordered", c_single_thread_batched, {}},
      {"C++ map", cpp_map, {}},
      {"C API: producer thread + pmap_next", c_two_threads, {}},
      {"C++ stream: producer thread + next()", cpp_stream, {}},
      {"C API: source + pmap_next", c_source_mode, {}},
      {"C API: source + pmap_next_many", c_source_mode_batched, {}},
      {"C++ imap", cpp_imap, {}},
  };
  if (argc > 4) {
    const std::string filter = argv[4];
    vs.erase(std::remove_if(vs.begin(), vs.end(),
                            [&](const variant &v) {
                              return std::string(v.name).find(filter) == std::string::npos;
                            }),
             vs.end());
  }
  for (auto &v : vs) v.run();  // warm-up
  for (int r = 0; r < runs; ++r) {
    for (auto &v : vs) {
      const auto t0 = clock_type::now();
      const std::uint64_t sum = v.run();
      const auto t1 = clock_type::now();
      if (sum != expected) {
        std::fprintf(stderr, "%s: wrong sum %" PRIu64 " != %" PRIu64 "\n", v.name, sum, expected);
        return 1;
      }
      v.ns_per_item.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() /
                              static_cast<double>(g_items));
    }
  }

  std::printf("items=%zu runs=%d workers=%u (0 = one per CPU)\n\n", g_items, runs, g_workers);
  std::printf("| variant | ns/item (median) | min | max |\n|---|---:|---:|---:|\n");
  for (auto &v : vs) {
    std::printf("| %s | %.0f | %.0f | %.0f |\n", v.name, median(v.ns_per_item),
                *std::min_element(v.ns_per_item.begin(), v.ns_per_item.end()),
                *std::max_element(v.ns_per_item.begin(), v.ns_per_item.end()));
  }
  if (vs.size() != 8) return 0;
  auto med = [&](std::size_t i) { return median(vs[i].ns_per_item); };
  std::printf("\n| C++ shape | C++ ns/item | C API, same shape | overhead |\n|---|---:|---:|---:|\n");
  auto row = [&](const char *shape, std::size_t cpp, std::size_t c) {
    std::printf("| %s | %.0f | %.0f (%s) | %+.1f%% |\n", shape, med(cpp), med(c), vs[c].name,
                100.0 * (med(cpp) / med(c) - 1.0));
  };
  row("map", 2, 1);
  row("stream", 4, 3);
  row("imap", 7, 6);
  return 0;
}
