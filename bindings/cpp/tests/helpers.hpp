// Shared helpers of the C++ binding's tests.
#ifndef PMAP_CPP_TESTS_HELPERS_HPP
#define PMAP_CPP_TESTS_HELPERS_HPP

#include <pmap.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>

namespace pmap_test {

/// Counts live instances, so a test can prove every item and result was freed exactly once
/// (crossbeam's `drops` habit). Not trivially copyable, so it always travels boxed.
struct counted {
  static inline std::atomic<long> live{0};
  int v;
  explicit counted(int x) : v(x) { live.fetch_add(1); }
  counted(const counted &o) : v(o.v) { live.fetch_add(1); }
  counted(counted &&o) noexcept : v(o.v) { live.fetch_add(1); }
  counted &operator=(const counted &) = default;
  counted &operator=(counted &&) = default;
  ~counted() { live.fetch_sub(1); }
};

/// A small value that is trivially copyable but has no default constructor.
struct small_no_default {
  int a;
  int b;
  small_no_default(int x, int y) : a(x), b(y) {}
};

/// A large value with no default constructor (boxed or slotted).
struct big_no_default {
  std::string s;
  int n;
  big_no_default(std::string str, int x) : s(std::move(str)), n(x) {}
};

/// A value that can be neither copied nor moved.
struct pinned {
  int v;
  explicit pinned(int x) : v(x) {}
  pinned(const pinned &) = delete;
  pinned &operator=(const pinned &) = delete;
};

/// An exception type outside the std::exception hierarchy.
struct odd_exception {
  int code;
};

/// An input iterator over 0, 1, 2 ... that yields prvalues, counts pulls, remembers the
/// thread that pulled, and can be told to throw at one position.
class counting_iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = int;
  using difference_type = std::ptrdiff_t;
  using pointer = const int *;
  using reference = int;

  struct probe {
    std::atomic<long> pulls{0};
    std::atomic<int> wrong_thread{0};
    std::thread::id feeder;
    std::atomic<bool> feeder_set{false};
    long throw_at = -1;
  };

  counting_iterator() = default;
  counting_iterator(int i, probe *p) : i_(i), p_(p) {}

  int operator*() const {
    note_thread();
    if (p_->throw_at == i_) {
      throw std::runtime_error("source failed at " + std::to_string(i_));
    }
    p_->pulls.fetch_add(1);
    return i_;
  }
  counting_iterator &operator++() {
    note_thread();
    ++i_;
    return *this;
  }
  counting_iterator operator++(int) {
    counting_iterator t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const counting_iterator &a, const counting_iterator &b) { return a.i_ == b.i_; }
  friend bool operator!=(const counting_iterator &a, const counting_iterator &b) { return a.i_ != b.i_; }

 private:
  void note_thread() const {
    if (!p_->feeder_set.exchange(true)) {
      p_->feeder = std::this_thread::get_id();
    } else if (p_->feeder != std::this_thread::get_id()) {
      p_->wrong_thread.fetch_add(1);
    }
  }
  int i_ = 0;
  probe *p_ = nullptr;
};

/// Waits (polling) until `pred()` holds, at most `limit`. Returns whether it did.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

inline pmap::options two_workers(std::uint32_t capacity = 0) {
  pmap::options o;
  o.workers = 2;
  o.capacity = capacity;
  return o;
}

}  // namespace pmap_test

#endif  // PMAP_CPP_TESTS_HELPERS_HPP
