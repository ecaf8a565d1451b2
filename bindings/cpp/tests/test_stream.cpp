// pmap::stream: push/pull from any threads; pmap::pool; errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace pmap_test;

TEST(Stream, ProducerAndConsumerOnDifferentThreads) {
  pmap::stream<int, std::string> s([](int x) { return std::to_string(x); }, two_workers(8));
  std::thread producer([&] {
    for (int i = 0; i < 5000; ++i) s.submit(i);
    s.close();
  });
  std::uint64_t expect = 0;
  while (auto r = s.next()) {
    ASSERT_TRUE(r->ok());
    ASSERT_EQ(r->index(), expect);
    ASSERT_EQ(r->value(), std::to_string(expect));
    ASSERT_NE(r->worker(), PMAP_NO_WORKER);
    ++expect;
  }
  producer.join();
  EXPECT_EQ(expect, 5000u);
  EXPECT_TRUE(s.done());
}

TEST(Stream, SeveralProducersAndConsumers) {
  pmap::options o = two_workers(16);
  o.ordered = false;
  pmap::stream<long, long> s([](long x) { return -x; }, o);
  constexpr int per_producer = 3000;
  std::vector<std::thread> producers;
  std::atomic<int> producing{2};
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) s.submit(p * per_producer + i);
      if (producing.fetch_sub(1) == 1) s.close();
    });
  }
  std::mutex m;
  std::vector<long> seen;
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.emplace_back([&] {
      while (auto r = s.next()) {
        std::lock_guard<std::mutex> g(m);
        seen.push_back(-r->value());
      }
    });
  }
  for (auto &t : producers) t.join();
  for (auto &t : consumers) t.join();
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), 2u * per_producer);
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], static_cast<long>(i));
}

TEST(Stream, OneThreadWithTrySubmit) {
  pmap::stream<std::string, std::size_t> s([](const std::string &w) { return w.size(); }, two_workers(4));
  std::size_t total = 0, refused = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string item(static_cast<std::size_t>(i % 10), 'a');
    while (!s.try_submit(item)) {
      ++refused;
      EXPECT_EQ(item.size(), static_cast<std::size_t>(i % 10)) << "a refused item is handed back";
      total += s.next()->value();  // full: make room
    }
  }
  s.close();
  while (auto r = s.next()) total += r->value();
  std::size_t expect = 0;
  for (int i = 0; i < 1000; ++i) expect += static_cast<std::size_t>(i % 10);
  EXPECT_EQ(total, expect);
  EXPECT_GT(refused, 0u) << "capacity 4 must have filled up";
}

TEST(Stream, TryNextTimesOutThenReportsDone) {
  pmap::stream<int, int> s([](int x) { return x; }, two_workers());
  EXPECT_FALSE(s.try_next());
  EXPECT_FALSE(s.try_next(std::chrono::milliseconds(2)));
  EXPECT_FALSE(s.done());
  s.submit(5);
  auto r = s.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), 5);
  s.close();
  EXPECT_FALSE(s.next());
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.try_next());
}

TEST(Stream, ExceptionsArriveOnTheirItem) {
  pmap::stream<int, int> s([](int x) {
    if (x % 3 == 0) throw std::logic_error("bad " + std::to_string(x));
    return x;
  }, two_workers(32));  // room for all 30: this thread submits before it consumes
  for (int i = 0; i < 30; ++i) s.submit(i);
  s.close();
  int n = 0;
  while (auto r = s.next()) {
    const int i = static_cast<int>(r->index());
    if (i % 3 == 0) {
      EXPECT_FALSE(r->ok());
      EXPECT_EQ(r->status(), PMAP_ITEM_FAILED);
      ASSERT_TRUE(r->get_exception());
      try {
        r->value();
        ADD_FAILURE() << "value() did not throw";
      } catch (const std::logic_error &e) {
        EXPECT_EQ(std::string(e.what()), "bad " + std::to_string(i));
      }
    } else {
      EXPECT_TRUE(r->ok());
      EXPECT_FALSE(r->get_exception());
      EXPECT_EQ(r->value(), i);
    }
    ++n;
  }
  EXPECT_EQ(n, 30);
  const pmap::stats st = s.stats();
  EXPECT_EQ(st.failed, 10u);
  EXPECT_EQ(st.succeeded, 20u);
}

TEST(Stream, FailFast) {
  pmap::options o = two_workers(64);
  o.fail_fast = true;
  pmap::stream<int, int> s([](int x) {
    if (x == 0) throw std::runtime_error("first");
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    return x;
  }, o);
  bool refused = false;
  for (int i = 0; i < 64 && !refused; ++i) {
    try {
      s.submit(i);
    } catch (const pmap::error &e) {
      EXPECT_EQ(e.status(), PMAP_CANCELLED);
      refused = true;
    }
  }
  s.close();
  int cancelled = 0;
  while (auto r = s.next()) cancelled += r->cancelled();
  EXPECT_TRUE(s.is_cancelled());
  EXPECT_GT(cancelled + static_cast<int>(refused), 0);
}

TEST(Stream, CancelFromAnotherThread) {
  counted::live = 0;
  {
    pmap::stream<counted, counted> s([](const counted &c) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      return counted(c.v);
    }, two_workers(100));
    for (int i = 0; i < 100; ++i) s.emplace(i);
    std::thread canceller([&] { s.cancel(); });
    canceller.join();
    EXPECT_TRUE(s.is_cancelled());
    try {
      s.submit(counted(1));
      ADD_FAILURE() << "submit after cancel";
    } catch (const pmap::error &e) {
      EXPECT_EQ(e.status(), PMAP_CANCELLED);
      EXPECT_NE(std::string(e.what()).find("PMAP_CANCELLED"), std::string::npos) << e.what();
    }
    int ok = 0, cancelled = 0;
    while (auto r = s.next()) {
      if (r->ok()) {
        ++ok;
      } else {
        ASSERT_TRUE(r->cancelled());
        ++cancelled;
        try {
          r->value();
          ADD_FAILURE() << "value() of a cancelled item";
        } catch (const pmap::error &e) {
          EXPECT_EQ(e.status(), PMAP_CANCELLED);
        }
      }
    }
    EXPECT_EQ(ok + cancelled, 100);
    EXPECT_GT(cancelled, 0);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Stream, CancelWakesABlockedConsumer) {
  pmap::stream<int, int> s([](int x) { return x; }, two_workers());
  std::thread consumer([&] {
    while (auto r = s.next()) {
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.cancel();
  consumer.join();  // would hang if next() did not return
  EXPECT_TRUE(s.done());
}

TEST(Stream, SubmitAfterCloseThrowsClosed) {
  pmap::stream<int, int> s([](int x) { return x; });
  s.close();
  try {
    s.submit(1);
    FAIL();
  } catch (const pmap::error &e) {
    EXPECT_EQ(e.status(), PMAP_CLOSED);
  }
  int item = 3;
  EXPECT_THROW(s.try_submit(item), pmap::error);
  EXPECT_EQ(item, 3);
}

TEST(Stream, DestroyedWithItemsOutstandingFreesThem) {
  counted::live = 0;
  {
    pmap::stream<counted, counted> s([](const counted &c) { return counted(c.v * 2); }, two_workers(64));
    for (int i = 0; i < 64; ++i) s.submit(counted(i));
    auto first = s.next();  // one taken, the rest left inside
    ASSERT_TRUE(first);
    EXPECT_EQ(first->value().v, 0);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Stream, MoveOnlyInAndOut) {
  auto s = pmap::make_stream<std::unique_ptr<int>>(
      [](std::unique_ptr<int> p) { return std::make_unique<std::string>(std::to_string(*p)); }, two_workers(4));
  static_assert(std::is_same_v<decltype(s), pmap::stream<std::unique_ptr<int>, std::unique_ptr<std::string>>>);
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) s.submit(std::make_unique<int>(i));
    auto p = std::make_unique<int>(100);
    while (!s.try_submit(p, std::chrono::milliseconds(1))) {
      ASSERT_TRUE(p);  // handed back on timeout
    }
    EXPECT_FALSE(p);  // moved from on success
    s.emplace(new int(101));
    s.close();
  });
  std::vector<std::unique_ptr<std::string>> out;
  while (auto r = s.next()) out.push_back(std::move(*r).value());
  producer.join();
  ASSERT_EQ(out.size(), 102u);
  EXPECT_EQ(*out[101], "101");
}

TEST(Stream, EmplaceAggregates) {
  struct word {
    std::string text;
    int line;
  };
  struct pos {
    short line;
    short col;
  };
  auto s = pmap::make_stream<word>([](const word &w) { return w.text + ":" + std::to_string(w.line); });
  s.emplace("alpha", 3);  // boxed aggregate, braces in C++17
  auto t = pmap::make_stream<pos>([](pos p) { return p.line * 100 + p.col; });
  t.emplace(short(2), short(7));  // aggregate that travels in the pointer bits
  s.close();
  t.close();
  EXPECT_EQ(s.next()->value(), "alpha:3");
  EXPECT_EQ(t.next()->value(), 207);
}

TEST(Stream, NonMovableResults) {
  pmap::stream<int, pinned> s([](int x) { return pinned(x); }, two_workers());
  s.submit(7);
  s.close();
  auto r = s.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value().v, 7);
}

TEST(Stream, IsMovable) {
  pmap::stream<int, int> a([](int x) { return x + 1; }, two_workers());
  a.submit(1);
  pmap::stream<int, int> b(std::move(a));
  b.submit(2);
  b.close();
  std::vector<int> got;
  while (auto r = b.next()) got.push_back(r->value());
  EXPECT_EQ(got, (std::vector<int>{2, 3}));
}

TEST(Stream, WithStateOncePerWorker) {
  std::atomic<int> inits{0}, exits{0};
  std::size_t most = 0;
  {
    auto s = pmap::make_stream<int>(pmap::with_state([&] { return inits.fetch_add(1), std::vector<int>(); },
                                                     [](std::vector<int> &seen, int x) {
                                                       seen.push_back(x);  // this worker's own vector
                                                       return seen.size();
                                                     },
                                                     [&](std::vector<int> &) { exits.fetch_add(1); }),
                                    two_workers());
    for (int i = 0; i < 100; ++i) s.submit(i);
    s.close();
    while (auto r = s.next()) most = std::max(most, r->value());
    EXPECT_LE(inits.load(), 2);  // a worker that got no item may not have started yet
  }
  // Destroying the stream ran init (if not yet) and exit once on each worker.
  EXPECT_EQ(inits.load(), 2);
  EXPECT_EQ(exits.load(), 2);
  EXPECT_GE(most, 50u);  // one worker saw at least half
}

TEST(Pool, AdoptsARawPoolAndReportsErrors) {
  pmap_options o;
  pmap_options_init(&o);
  o.workers = 1;
  o.work = [](void *, void *, void *item, void **result) -> int32_t {
    *result = item;
    return 0;
  };
  pmap_pool *raw = nullptr;
  ASSERT_EQ(pmap_new(&o, &raw), PMAP_OK);
  pmap::pool p(raw);
  EXPECT_EQ(p.capi(), raw);
  EXPECT_EQ(p.context(), nullptr);
  EXPECT_EQ(pmap_submit(p.capi(), &o, -1), PMAP_OK);
  EXPECT_EQ(p.stats().submitted, 1u);
  p.close();
  pmap::pool q = std::move(p);
  EXPECT_FALSE(p);
  EXPECT_TRUE(q);
  q.cancel();
  EXPECT_TRUE(q.is_cancelled());
}

TEST(Pool, BadOptions) {
  pmap::options o;
  o.capacity = 2000000000u;
  try {
    pmap::stream<int, int> s([](int x) { return x; }, o);
    FAIL();
  } catch (const pmap::error &e) {
    EXPECT_EQ(e.status(), PMAP_INVALID);
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos);
  }
}
