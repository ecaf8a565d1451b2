// pmap::imap: a lazy, bounded input range fed by the pool's own feeder thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace pmap_test;

TEST(Imap, OrderedRangeFor) {
  std::vector<int> in(3000);
  std::iota(in.begin(), in.end(), 0);
  int expect = 0;
  for (auto &v : pmap::imap(in, [](int x) { return std::to_string(x); }, two_workers(8))) {
    ASSERT_EQ(v, std::to_string(expect++));
  }
  EXPECT_EQ(expect, 3000);
}

TEST(Imap, IteratorGivesTheIndex) {
  std::vector<int> in(500);
  std::iota(in.begin(), in.end(), 0);
  auto r = pmap::imap(in, [](int x) { return x * 7; }, two_workers(8));
  std::uint64_t i = 0;
  for (auto it = r.begin(); it != r.end(); ++it, ++i) {
    ASSERT_EQ(it.index(), i);
    ASSERT_EQ(*it, static_cast<int>(i) * 7);
  }
  EXPECT_EQ(i, 500u);
}

TEST(Imap, Unordered) {
  std::vector<int> in(2000);
  std::iota(in.begin(), in.end(), 0);
  pmap::options o = two_workers(16);
  o.ordered = false;
  std::vector<int> seen;
  auto r = pmap::imap(in, [](int x) {
    if (x % 97 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
    return x;
  }, o);
  for (auto it = r.begin(); it != r.end(); ++it) {
    ASSERT_EQ(static_cast<std::uint64_t>(*it), it.index());
    seen.push_back(*it);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, in);
}

TEST(Imap, OnlyTheFeederThreadTouchesTheInput) {
  counting_iterator::probe probe;
  long sum = 0;
  for (int v : pmap::imap(counting_iterator(0, &probe), counting_iterator(1000, &probe),
                          [](int x) { return x; }, two_workers(8))) {
    sum += v;
  }
  EXPECT_EQ(sum, 999L * 1000 / 2);
  EXPECT_EQ(probe.pulls.load(), 1000);
  EXPECT_EQ(probe.wrong_thread.load(), 0);
  EXPECT_NE(probe.feeder, std::this_thread::get_id());
}

TEST(Imap, Bounded) {
  counting_iterator::probe probe;
  const std::uint32_t capacity = 8;
  long consumed = 0;
  long worst = 0;
  for (int v : pmap::imap(counting_iterator(0, &probe), counting_iterator(400, &probe),
                          [](int x) { return x; }, two_workers(capacity))) {
    ++consumed;
    worst = std::max(worst, probe.pulls.load() - consumed);
    std::this_thread::sleep_for(std::chrono::microseconds(50));  // a slow consumer
    (void)v;
  }
  EXPECT_EQ(consumed, 400);
  // In flight (capacity) plus what the range took ahead (at most 16).
  EXPECT_LE(worst, static_cast<long>(capacity) + 16);
}

TEST(Imap, RethrowsAtTheItemThatThrew) {
  std::vector<int> in(100);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> got;
  try {
    for (int v : pmap::imap(in, [](int x) {
           if (x == 42) throw std::out_of_range("42");
           return x;
         }, two_workers(8))) {
      got.push_back(v);
    }
    FAIL() << "no exception";
  } catch (const std::out_of_range &e) {
    EXPECT_STREQ(e.what(), "42");
  }
  ASSERT_EQ(got.size(), 42u);
  EXPECT_EQ(got.back(), 41);
}

TEST(Imap, AnExceptionFromTheInputArrivesInPlace) {
  counting_iterator::probe probe;
  probe.throw_at = 30;
  std::vector<int> got;
  try {
    for (int v : pmap::imap(counting_iterator(0, &probe), counting_iterator(100, &probe),
                            [](int x) { return x; }, two_workers(4))) {
      got.push_back(v);
    }
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    EXPECT_STREQ(e.what(), "source failed at 30");
  }
  EXPECT_EQ(got.size(), 30u);
}

TEST(Imap, LeavingTheLoopEarlyCancelsAndFreesEverything) {
  counted::live = 0;
  std::atomic<int> ran{0};
  {
    std::vector<counted> in;
    for (int i = 0; i < 5000; ++i) in.emplace_back(i);
    int n = 0;
    // Moved in: the range owns the counted inputs, and the outputs are boxed too.
    for (auto &c : pmap::imap(std::move(in), [&](const counted &x) {
           ran.fetch_add(1);
           std::this_thread::sleep_for(std::chrono::microseconds(100));
           return counted(x.v);
         }, two_workers(32))) {
      if (++n == 5) break;
      (void)c;
    }
    EXPECT_LT(ran.load(), 5000);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Imap, LeavingEarlyFreesOwnedInputsThatNeverRan) {
  counted::live = 0;
  {
    std::vector<counted> store;
    for (int i = 0; i < 2000; ++i) store.emplace_back(i);
    int n = 0;
    // move_iterator: each input is moved into a heap item the pool owns until it runs.
    for (auto &c : pmap::imap(std::make_move_iterator(store.begin()), std::make_move_iterator(store.end()),
                              [](counted x) {
                                std::this_thread::sleep_for(std::chrono::microseconds(100));
                                return counted(x.v);
                              },
                              two_workers(64))) {
      ASSERT_EQ(c.v, n);
      if (++n == 3) break;
    }
    store.clear();
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Imap, OwnedInputsOfInputIteratorsAreFreed) {
  counted::live = 0;
  {
    std::vector<counted> store;
    for (int i = 0; i < 300; ++i) store.emplace_back(i);
    auto r = pmap::imap(std::make_move_iterator(store.begin()), std::make_move_iterator(store.end()),
                        [](counted c) { return c.v; }, two_workers(16));
    long sum = 0;
    for (int v : r) sum += v;
    EXPECT_EQ(sum, 299L * 300 / 2);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Imap, CancelFromAnotherThread) {
  std::vector<int> in(100000);
  std::iota(in.begin(), in.end(), 0);
  auto r = pmap::imap(in, [](int x) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    return x;
  }, two_workers(64));
  std::atomic<long> seen{0};
  std::thread canceller([&] {
    ASSERT_TRUE(wait_until([&] { return seen.load() >= 100; }));
    r.cancel();
  });
  long last = -1;
  for (int v : r) {
    // Ordered. Not necessarily contiguous: an item a worker had taken but not yet
    // started when the cancel landed is cancelled, while a later one already running
    // finishes.
    EXPECT_GT(v, last);
    last = v;
    seen.fetch_add(1);
  }
  canceller.join();
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_LT(seen.load(), 100000);
  const pmap::stats s = r.stats();
  EXPECT_GT(s.cancelled, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.succeeded + s.failed + s.cancelled, s.submitted);
}

TEST(Imap, StatsWhileIterating) {
  std::vector<int> in(1000, 1);
  auto r = pmap::imap(in, [](int x) { return x; }, two_workers(8));
  long n = 0;
  for (int v : r) n += v;
  const pmap::stats s = r.stats();
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(s.submitted, 1000u);
  EXPECT_EQ(s.succeeded, 1000u);
  EXPECT_EQ(s.workers, 2u);
}

TEST(Imap, MoveOnlyInAndOut) {
  std::vector<std::unique_ptr<int>> in;
  for (int i = 0; i < 200; ++i) in.push_back(std::make_unique<int>(i));
  std::vector<std::unique_ptr<long>> out;
  for (auto &p : pmap::imap(in, [](std::unique_ptr<int> &q) { return std::make_unique<long>(*q); })) {
    out.push_back(std::move(p));
  }
  ASSERT_EQ(out.size(), 200u);
  EXPECT_EQ(*out[199], 199);
}

TEST(Imap, IstreamLines) {
  std::istringstream text("alpha\nbeta\ngamma\n");
  std::vector<std::size_t> lens;
  for (auto n : pmap::imap(std::istream_iterator<std::string>(text), std::istream_iterator<std::string>(),
                           [](const std::string &s) { return s.size(); })) {
    lens.push_back(n);
  }
  EXPECT_EQ(lens, (std::vector<std::size_t>{5, 4, 5}));
}

TEST(Imap, WithStateAndThreadNames) {
  std::vector<int> in(50, 0);
  pmap::options o = two_workers();
  o.name = "imaptest";
  for (const auto &name : pmap::imap(in, pmap::with_state([] { return std::string(); },
                                                          [](std::string &buf, int) {
                                                            char n[32] = {};
                                                            pthread_getname_np(pthread_self(), n, sizeof n);
                                                            buf = n;
                                                            return buf;
                                                          }),
                                     o)) {
    EXPECT_EQ(name.rfind("pmap-imaptest-", 0), 0u) << name;
  }
}

TEST(Imap, EmptyInput) {
  std::vector<int> in;
  int n = 0;
  for (int v : pmap::imap(in, [](int x) { return x; })) n += v + 1;
  EXPECT_EQ(n, 0);
}

TEST(Imap, DestroyedWithoutIterating) {
  counted::live = 0;
  {
    std::vector<counted> in;
    for (int i = 0; i < 1000; ++i) in.emplace_back(i);
    auto r = pmap::imap(in, [](const counted &c) { return counted(c.v); }, two_workers(32));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let it fill the window
  }
  EXPECT_EQ(counted::live.load(), 0);
}
