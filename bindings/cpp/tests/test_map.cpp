// pmap::map: blocking, results in input order.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <memory>
#include <numeric>
#if __cplusplus >= 202002L
#include <ranges>
#endif
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace pmap_test;

namespace {

std::vector<int> iota_vec(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

TEST(Map, ReturnsResultsInInputOrder) {
  const auto in = iota_vec(5000);
  const auto out = pmap::map(in, [](int x) { return x * 2 + 1; }, two_workers(8));
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i], in[i] * 2 + 1);
  }
}

TEST(Map, EmptyRange) {
  const std::vector<int> in;
  EXPECT_TRUE(pmap::map(in, [](int x) { return x; }).empty());
  EXPECT_TRUE(pmap::map(std::list<std::string>{}, [](const std::string &s) { return s; }).empty());
}

TEST(Map, PassesElementsByReferenceWithoutCopying) {
  std::vector<std::string> in = {"a", "bb", "ccc"};
  const auto addrs = pmap::map(in, [](const std::string &s) { return &s; });
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(addrs[i], &in[i]);
  }
  // A callable taking a non-const reference may update its own element.
  pmap::map(in, [](std::string &s) { return s += "!", 0; });
  EXPECT_EQ(in[2], "ccc!");
}

TEST(Map, LargeResultsStringsAndVectors) {
  const auto in = iota_vec(3000);
  const auto out = pmap::map(in, [](int x) { return std::string(static_cast<std::size_t>(x % 50), 'x') + std::to_string(x); },
                             two_workers(16));
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(out[static_cast<std::size_t>(i)], std::string(static_cast<std::size_t>(i % 50), 'x') + std::to_string(i));
  }
}

TEST(Map, NonContiguousForwardRange) {
  std::list<int> in;
  for (int i = 0; i < 1000; ++i) in.push_back(i);
  const auto out = pmap::map(in, [](int x) { return x * 3; }, two_workers(7));
  int i = 0;
  for (int v : out) ASSERT_EQ(v, 3 * i++);
  EXPECT_EQ(i, 1000);
}

TEST(Map, InputIteratorsAndIteratorPairs) {
  std::istringstream text("the quick brown fox jumps over the lazy dog");
  const auto lens = pmap::map(std::istream_iterator<std::string>(text), std::istream_iterator<std::string>(),
                              [](const std::string &w) { return w.size(); }, two_workers(2));
  EXPECT_EQ(lens, (std::vector<std::size_t>{3, 5, 5, 3, 5, 4, 3, 4, 3}));

  const int arr[] = {1, 2, 3, 4};
  EXPECT_EQ(pmap::map(arr, arr + 4, [](int x) { return x * x; }), (std::vector<int>{1, 4, 9, 16}));
  EXPECT_EQ(pmap::map(arr, [](int x) { return -x; }), (std::vector<int>{-1, -2, -3, -4}));
}

TEST(Map, TemporaryRange) {
  const auto out = pmap::map(iota_vec(100), [](int x) { return x + 1; });
  EXPECT_EQ(out.front(), 1);
  EXPECT_EQ(out.back(), 100);
}

TEST(Map, MoveOnlyElementsInAndOut) {
  std::vector<std::unique_ptr<int>> in;
  for (int i = 0; i < 500; ++i) in.push_back(std::make_unique<int>(i));
  const auto out = pmap::map(in, [](const std::unique_ptr<int> &p) { return std::make_unique<long>(*p * 10L); },
                             two_workers(8));
  ASSERT_EQ(out.size(), 500u);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(*out[static_cast<std::size_t>(i)], i * 10L);

  // Through the owning (imap) path: move_iterator hands the unique_ptrs over.
  const auto moved = pmap::map(std::make_move_iterator(in.begin()), std::make_move_iterator(in.end()),
                               [](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); });
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(*moved[static_cast<std::size_t>(i)], i + 1);
    ASSERT_EQ(in[static_cast<std::size_t>(i)], nullptr);
  }
}

TEST(Map, NonDefaultConstructibleResults) {
  const auto in = iota_vec(700);
  const auto small = pmap::map(in, [](int x) { return small_no_default(x, -x); }, two_workers(4));
  for (int i = 0; i < 700; ++i) {
    ASSERT_EQ(small[static_cast<std::size_t>(i)].a, i);
    ASSERT_EQ(small[static_cast<std::size_t>(i)].b, -i);
  }
  const auto big = pmap::map(in, [](int x) { return big_no_default(std::to_string(x), x); }, two_workers(4));
  for (int i = 0; i < 700; ++i) ASSERT_EQ(big[static_cast<std::size_t>(i)].s, std::to_string(i));
}

TEST(Map, RethrowsTheExceptionAndCancelsTheRest) {
  const auto in = iota_vec(2000);
  std::atomic<int> ran{0};
  try {
    pmap::map(
        in,
        [&](int x) {
          ran.fetch_add(1);
          if (x == 10) throw std::invalid_argument("bad item 10");
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          return x;
        },
        two_workers(16));
    FAIL() << "no exception";
  } catch (const std::invalid_argument &e) {
    EXPECT_STREQ(e.what(), "bad item 10");
  }
  EXPECT_LT(ran.load(), 2000) << "the rest was not cancelled";
}

TEST(Map, RethrowsTheFirstFailedItem) {
  // Items 3 and 7 both throw; 7 waits until 3 has thrown, so 3 surely failed (rather
  // than being cancelled) and is the one rethrown, whatever order they finish in.
  const auto in = iota_vec(200);
  std::atomic<bool> three_threw{false};
  try {
    pmap::map(
        in,
        [&](int x) {
          if (x == 3) {
            three_threw = true;
            throw std::runtime_error("3");
          }
          if (x == 7) {
            wait_until([&] { return three_threw.load(); });
            throw std::runtime_error("7");
          }
          return x;
        },
        two_workers(8));
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    EXPECT_STREQ(e.what(), "3");
  }
}

TEST(Map, CarriesExceptionsOfAnyType) {
  const auto in = iota_vec(50);
  try {
    pmap::map(in, [](int x) -> std::string {
      if (x == 20) throw odd_exception{42};
      return std::to_string(x);
    });
    FAIL() << "no exception";
  } catch (const odd_exception &e) {
    EXPECT_EQ(e.code, 42);
  }
}

TEST(Map, FailuresFreeEverything) {
  counted::live = 0;
  {
    std::vector<counted> in;
    for (int i = 0; i < 300; ++i) in.emplace_back(i);
    EXPECT_THROW(pmap::map(in,
                           [](const counted &c) {
                             if (c.v == 100) throw std::runtime_error("x");
                             return counted(c.v);
                           },
                           two_workers(8)),
                 std::runtime_error);
    std::istringstream words("a b c d e f g h");
    EXPECT_THROW(pmap::map(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>(),
                           [](const std::string &w) {
                             if (w == "c") throw std::runtime_error("c");
                             return counted(1);
                           }),
                 std::runtime_error);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Map, PerWorkerStateRunsOncePerWorker) {
  std::atomic<int> inits{0}, exits{0};
  const auto in = iota_vec(4000);
  struct state {
    std::thread::id owner;
    long items = 0;
  };
  const auto out = pmap::map(
      in,
      pmap::with_state([&] { inits.fetch_add(1); return state{std::this_thread::get_id(), 0}; },
                       [](state &s, int x) {
                         ++s.items;  // per-worker, so no race
                         return s.owner == std::this_thread::get_id() ? x : -1;
                       },
                       [&](state &s) {
                         EXPECT_EQ(s.owner, std::this_thread::get_id());
                         exits.fetch_add(1);
                       }),
      two_workers());
  for (int i = 0; i < 4000; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(inits.load(), 2);
  EXPECT_EQ(exits.load(), 2);
}

TEST(Map, PerWorkerStateGetsTheWorkerIdAndNeedNotBeMovable) {
  std::mutex m;
  std::set<std::uint32_t> ids;
  const auto in = iota_vec(100);
  const auto out = pmap::map(in,
                             pmap::with_state(
                                 [&](std::uint32_t id) {
                                   std::lock_guard<std::mutex> g(m);
                                   ids.insert(id);
                                   return pinned(static_cast<int>(id));
                                 },
                                 [](pinned &p, int x) { return x + 0 * p.v; }),
                             two_workers());
  EXPECT_EQ(out[99], 99);
  EXPECT_EQ(ids, (std::set<std::uint32_t>{0, 1}));
}

TEST(Map, AnExceptionInStateInitFailsTheItems) {
  const auto in = iota_vec(10);
  EXPECT_THROW(pmap::map(in,
                         pmap::with_state([]() -> int { throw std::domain_error("no state"); },
                                          [](int &, int x) { return x; })),
               std::domain_error);
  // An exception in exit is swallowed.
  const auto out = pmap::map(in, pmap::with_state([] { return 0; }, [](int &, int x) { return x; },
                                                  [](int &) { throw std::runtime_error("exit"); }));
  EXPECT_EQ(out.size(), 10u);
}

TEST(Map, CancelFromAnotherThread) {
  const auto in = iota_vec(10000);
  pmap::control ctl;
  std::atomic<int> started{0};
  std::thread canceller([&] {
    ASSERT_TRUE(wait_until([&] { return started.load() > 0; }));
    EXPECT_GT(ctl.stats().submitted, 0u);  // live counters of the running map
    ctl.cancel();
  });
  try {
    pmap::map(
        in,
        [&](int x) {
          started.fetch_add(1);
          // Hold the workers until the cancel lands (bounded wait).
          wait_until([&] { return ctl.is_cancelled(); });
          return x;
        },
        two_workers(32), ctl);
    FAIL() << "no exception";
  } catch (const pmap::error &e) {
    EXPECT_EQ(e.status(), PMAP_CANCELLED);
  }
  canceller.join();
  const pmap::stats s = ctl.stats();  // the final counters
  EXPECT_GT(s.cancelled, 0u);
  EXPECT_LT(started.load(), 10000);
  EXPECT_EQ(s.succeeded + s.failed + s.cancelled, s.submitted);
}

TEST(Map, CancelledControlStopsAtOnce) {
  pmap::control ctl;
  ctl.cancel();
  std::atomic<int> ran{0};
  const auto in = iota_vec(1000);
  EXPECT_THROW(pmap::map(in, [&](int x) { return ran.fetch_add(1), x; }, two_workers(), ctl), pmap::error);
  EXPECT_LT(ran.load(), 1000);
}

TEST(Map, BadOptionsThrowPmapError) {
  pmap::options o;
  o.workers = 100000;
  try {
    pmap::map(iota_vec(3), [](int x) { return x; }, o);
    FAIL() << "no exception";
  } catch (const pmap::error &e) {
    EXPECT_EQ(e.status(), PMAP_INVALID);
    EXPECT_NE(std::string(e.what()).find("workers"), std::string::npos) << e.what();
    EXPECT_STREQ(e.status_name(), pmap_status_str(PMAP_INVALID));
  }
}

#if __cplusplus >= 202002L
TEST(Map, Cxx20Views) {
  std::vector<int> v = {1, 2, 3, 4, 5, 6};
  // A borrowed view, a view of prvalues, and an end sentinel of another type.
  EXPECT_EQ(pmap::map(v | std::views::filter([](int x) { return x % 2 == 0; }), [](int x) { return x * 10; }),
            (std::vector<int>{20, 40, 60}));
  EXPECT_EQ(pmap::map(std::views::iota(0, 4), [](int x) { return x + 1; }), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(pmap::map(std::views::take_while(v, [](int x) { return x < 4; }), [](int x) { return x * x; }),
            (std::vector<int>{1, 4, 9}));
  long sum = 0;
  for (int x : pmap::imap(std::views::iota(0, 100), [](int x) { return x; })) sum += x;
  EXPECT_EQ(sum, 4950);
}

TEST(Map, DesignatedInitializers) {
  const auto out = pmap::map(iota_vec(10), [](int x) { return x; }, {.workers = 2, .capacity = 4, .name = "cxx20"});
  EXPECT_EQ(out.size(), 10u);
}
#endif
