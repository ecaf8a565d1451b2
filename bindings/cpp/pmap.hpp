// pmap.hpp: the C++ binding of pmap, a streaming, bounded, cancellable parallel map.
//
// One header, C++17 (works unchanged in C++20), over the C API of <pmap.h>. It adds no
// pipeline of its own: every item goes through pmap_submit (or the pool's source) and
// comes back through pmap_next, so every guarantee of the C API holds here too.
//
//   std::vector<R>     pmap::map(range, fn, opts)     blocking; results in input order
//   pmap::imap_range<R> pmap::imap(range, fn, opts)   lazy; iterate with range-for
//   pmap::stream<In, Out>                             push/pull from any threads
//   pmap::with_state(init, fn[, exit])                per-worker state for any of them
//
// Conventions
//  - `fn` is any callable, lambdas with captures included. The pool's workers call it
//    concurrently through a const reference, so it must be safe to call from several
//    threads at once; per-thread mutable state goes in pmap::with_state.
//  - Exceptions never cross the C ABI. Every trampoline catches everything; an exception
//    thrown by `fn` travels as a std::exception_ptr to the thread that consumes that item
//    and is rethrown there, on that item. A failed C call throws pmap::error (status code
//    plus pmap_last_error()).
//  - Nothing leaks: whatever the pool never hands back (cancel, error, destruction with
//    items outstanding) is freed by the pool's on_drop when the owning object goes away.
//  - Objects are move-only. cancel(), stats() and is_cancelled() (and close() on a stream)
//    may be called from any thread while others submit or consume. Destroying an object
//    while another thread still uses it is undefined, as for any C++ object.
//
// How items reach C (none of this is visible in the API, but it explains the costs): an
// element of a forward range of lvalues travels as its address (no copy); a small,
// trivially copyable value (int, double, a pointer ...) travels inside the `void *` bits
// (no allocation); anything else is moved into a heap box that the worker frees after the
// call. Results follow the same rule through the C `value`. An exception's
// std::exception_ptr waits in a per-pool table; the item's C error code is its slot.
//
// Build: put the directory of pmap.h on the include path and link with -lpmap.

#ifndef PMAP_HPP
#define PMAP_HPP

#include <pmap.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pmap {

// =========================================================================================
// Errors, options, stats
// =========================================================================================

/// A failed pmap call, or an item that has no value because it never ran. `status()` is
/// the `PMAP_*` code; `what()` is pmap_last_error() of the failed call, or says what
/// happened.
class error : public std::runtime_error {
 public:
  error(pmap_status status, const std::string &message)
      : std::runtime_error(message), status_(status) {}

  /// The `PMAP_*` status code (`PMAP_CANCELLED` for an item that never ran).
  pmap_status status() const noexcept { return status_; }

  /// The status as a static string, e.g. "PMAP_CANCELLED".
  const char *status_name() const noexcept { return pmap_status_str(status_); }

 private:
  pmap_status status_;
};

namespace detail {

/// The pmap::error of a C call that just failed on this thread (read before any other
/// pmap call on this thread can replace the message).
inline error make_error(pmap_status status) {
  const char *message = pmap_last_error();
  return error(status, (message != nullptr && *message != '\0') ? std::string(message)
                                                                : std::string(pmap_status_str(status)));
}

[[noreturn]] inline void throw_status(pmap_status status) { throw make_error(status); }

inline void check(pmap_status status) {
  if (status != PMAP_OK) {
    throw_status(status);
  }
}

/// A timeout for the C API: nanoseconds, negative durations as 0 (do not wait).
template <class Rep, class Period>
std::int64_t to_ns(std::chrono::duration<Rep, Period> timeout) noexcept {
  const auto ns = std::chrono::duration_cast<std::chrono::duration<double, std::nano>>(timeout).count();
  if (!(ns > 0)) {
    return 0;
  }
  if (ns >= 9.2e18) {
    return INT64_MAX;
  }
  return static_cast<std::int64_t>(ns);
}

}  // namespace detail

/// Options of a pool. Same meaning and defaults as `pmap_options`; a plain aggregate, so
/// C++20 designated initializers work: `pmap::options{.workers = 4, .ordered = false}`.
struct options {
  /// Worker threads; 0 = the CPUs this process may use.
  std::uint32_t workers = 0;
  /// Most items in flight; 0 = max(4096, 256 x workers).
  std::uint32_t capacity = 0;
  /// imap and stream hand results back in input order (else as they finish). pmap::map
  /// always returns input order and picks its own delivery order.
  bool ordered = true;
  /// imap and stream: cancel the pool after the first item whose callable throws.
  /// pmap::map always stops at the first exception.
  bool fail_fast = false;
  /// Thread-name prefix (`pmap-<name>-<id>`); empty = none.
  std::string name;
};

/// Counters of a pool: submitted, succeeded, failed, cancelled, in_flight, workers,
/// elapsed_ns, busy_ns (the C struct, consistent with each other when read).
using stats = ::pmap_stats;

// =========================================================================================
// Per-worker state
// =========================================================================================

namespace detail {
struct no_exit {};
}  // namespace detail

/// A callable with per-worker state, made by pmap::with_state.
template <class Init, class Fn, class Exit = detail::no_exit>
struct with_state_t {
  Init init;
  Fn fn;
  Exit exit;
};

/// Per-worker state: `init()` (or `init(std::uint32_t worker_id)`) runs once on every
/// worker thread when the pool starts and returns that worker's `State` (which need not
/// be movable); the callable is then called as `fn(State &, item)` on that thread only.
/// When the pool is destroyed the State is destroyed on its own thread. If `init` throws,
/// every item that worker takes fails with that exception.
template <class Init, class Fn>
with_state_t<std::decay_t<Init>, std::decay_t<Fn>> with_state(Init &&init, Fn &&fn) {
  return {std::forward<Init>(init), std::forward<Fn>(fn), detail::no_exit{}};
}

/// As with_state(init, fn), plus `exit(State &)` (or `exit(State &, worker_id)`), run on
/// each worker thread when the pool is destroyed, before the State is. An exception from
/// `exit` is swallowed: the pool is going away and nobody is left to receive it.
template <class Init, class Fn, class Exit>
with_state_t<std::decay_t<Init>, std::decay_t<Fn>, std::decay_t<Exit>> with_state(Init &&init, Fn &&fn,
                                                                                  Exit &&exit) {
  return {std::forward<Init>(init), std::forward<Fn>(fn), std::forward<Exit>(exit)};
}

// =========================================================================================
// Internals
// =========================================================================================

namespace detail {

/// Tag for constructors meant for this header only.
struct internal {};

// ---- jobs: how the callable is called --------------------------------------------------

/// A plain callable: `fn(item)`.
template <class F>
struct job {
  F fn;
  static constexpr bool stateful = false;

  template <class A>
  static constexpr bool invocable = std::is_invocable_v<const F &, A>;
  template <class A>
  static constexpr bool invocable_mutable = std::is_invocable_v<F &, A>;

  template <class A>
  decltype(auto) call(void * /*worker*/, A &&a) const {
    return std::invoke(fn, std::forward<A>(a));
  }
  void *init(std::uint32_t) const noexcept { return nullptr; }
  void exit(std::uint32_t, void *) const noexcept {}
};

template <class Init>
decltype(auto) run_init(const Init &init, std::uint32_t id) {
  if constexpr (std::is_invocable_v<const Init &, std::uint32_t>) {
    return std::invoke(init, id);
  } else {
    static_assert(std::is_invocable_v<const Init &>,
                  "pmap::with_state: init must be callable as init() or init(std::uint32_t worker_id)");
    return std::invoke(init);
  }
}

/// One worker's state: the State, or why init failed.
template <class State>
struct worker_slot {
  std::unique_ptr<State> state;
  std::exception_ptr init_error;
};

/// A callable with per-worker state: `fn(State &, item)`.
template <class Init, class Fn, class Exit>
struct job<with_state_t<Init, Fn, Exit>> {
  with_state_t<Init, Fn, Exit> fn;
  static constexpr bool stateful = true;
  using state_type = std::decay_t<decltype(run_init(std::declval<const Init &>(), 0u))>;
  using slot_type = worker_slot<state_type>;

  template <class A>
  static constexpr bool invocable = std::is_invocable_v<const Fn &, state_type &, A>;
  template <class A>
  static constexpr bool invocable_mutable = std::is_invocable_v<Fn &, state_type &, A>;

  template <class A>
  decltype(auto) call(void *worker, A &&a) const {
    auto *slot = static_cast<slot_type *>(worker);
    if (slot == nullptr) {
      throw error(PMAP_SYSTEM, "pmap: the worker's state could not be allocated");
    }
    if (slot->init_error) {
      std::rethrow_exception(slot->init_error);
    }
    return std::invoke(fn.fn, *slot->state, std::forward<A>(a));
  }

  /// worker_init: runs on the worker thread. Never throws.
  void *init(std::uint32_t id) const noexcept {
    slot_type *slot = nullptr;
    try {
      slot = new slot_type();
    } catch (...) {
      return nullptr;  // every item of this worker then fails with PMAP_SYSTEM
    }
    try {
      slot->state.reset(new state_type(run_init(fn.init, id)));
    } catch (...) {
      slot->init_error = std::current_exception();
    }
    return slot;
  }

  /// worker_exit: runs on the worker thread. Never throws.
  void exit(std::uint32_t id, void *worker) const noexcept {
    auto *slot = static_cast<slot_type *>(worker);
    if (slot == nullptr) {
      return;
    }
    if constexpr (!std::is_same_v<Exit, no_exit>) {
      try {
        if (slot->state) {
          if constexpr (std::is_invocable_v<const Exit &, state_type &, std::uint32_t>) {
            std::invoke(fn.exit, *slot->state, id);
          } else {
            std::invoke(fn.exit, *slot->state);
          }
        }
      } catch (...) {
        // Swallowed (see with_state).
      }
    }
    (void)id;
    delete slot;
  }
};

// ---- carriers: how a value travels as a void * ------------------------------------------

/// Small enough and trivially copyable (and copyable at all: a type with deleted copies
/// counts as trivially copyable to some compilers): travels inside the pointer's bits.
template <class T>
constexpr bool fits_pointer = std::is_object_v<T> && std::is_trivially_copyable_v<T> &&
                              std::is_trivially_copy_constructible_v<T> && std::is_trivially_destructible_v<T> &&
                              sizeof(T) <= sizeof(void *) && alignof(T) <= alignof(void *);

template <class T>
void *pack(const T &v) noexcept {
  void *p = nullptr;
  std::memcpy(static_cast<void *>(&p), static_cast<const void *>(std::addressof(v)), sizeof(T));
  return p;
}

template <class T>
T unpack(void *p) noexcept {
  alignas(T) unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, static_cast<const void *>(&p), sizeof(T));
  return *std::launder(reinterpret_cast<T *>(bytes));
}

/// How an argument of type T is handed to the job: as an rvalue when the callable takes
/// one (by value, const &, &&), else as an lvalue (a callable taking T &).
template <class Job, class T>
using owned_arg_t = std::conditional_t<Job::template invocable<T &&>, T &&, T &>;

/// Input, owned, in the pointer bits.
template <class T>
struct in_inline {
  using value_type = T;
  template <class Job>
  using arg_t = owned_arg_t<Job, T>;

  template <class... A>
  static void *make(A &&...a) {
    if constexpr (std::is_constructible_v<T, A &&...>) {
      const T v(std::forward<A>(a)...);
      return pack(v);
    } else {
      const T v{std::forward<A>(a)...};  // an aggregate, in C++17
      return pack(v);
    }
  }
  template <class Job, class K>
  static void apply(void *item, K &&k) {
    T v = unpack<T>(item);
    k(static_cast<arg_t<Job>>(v));
  }
  static void release(void *) noexcept {}
};

/// Input, owned, in a heap box (freed by the worker after the call, or by on_drop / the
/// consumer when it never ran).
template <class T>
struct in_boxed {
  using value_type = T;
  template <class Job>
  using arg_t = owned_arg_t<Job, T>;

  template <class... A>
  static void *make(A &&...a) {
    if constexpr (std::is_constructible_v<T, A &&...>) {
      return new T(std::forward<A>(a)...);
    } else {
      return new T{std::forward<A>(a)...};  // an aggregate, in C++17
    }
  }
  template <class Job, class K>
  static void apply(void *item, K &&k) {
    k(static_cast<arg_t<Job>>(*static_cast<T *>(item)));
  }
  static void release(void *item) noexcept { delete static_cast<T *>(item); }
};

/// Input, borrowed: the address of an element of the caller's range (T may be const).
template <class T>
struct in_borrowed {
  using value_type = T;
  template <class Job>
  using arg_t = T &;

  static void *make(T &ref) noexcept {
    return const_cast<void *>(static_cast<const volatile void *>(std::addressof(ref)));
  }
  template <class Job, class K>
  static void apply(void *item, K &&k) {
    k(*static_cast<T *>(item));
  }
  static void release(void *) noexcept {}
};

/// The carrier of an owned input of type T.
template <class T>
using in_owned_t = std::conditional_t<fits_pointer<T>, in_inline<T>, in_boxed<T>>;

/// Output in the pointer bits; a consumer holds it as std::optional<R>.
template <class R>
struct out_inline {
  using holder = std::optional<R>;
  template <class F>
  static void *make(F &&f) {
    const R v(std::forward<F>(f)());
    return pack(v);
  }
  static holder take(void *v) noexcept { return holder(unpack<R>(v)); }
  static void release(void *) noexcept {}
};

/// Output in a heap box; a consumer holds it as std::unique_ptr<R>. R need not be movable.
template <class R>
struct out_boxed {
  using holder = std::unique_ptr<R>;
  template <class F>
  static void *make(F &&f) {
    return new R(std::forward<F>(f)());
  }
  static holder take(void *v) noexcept { return holder(static_cast<R *>(v)); }
  static void release(void *v) noexcept { delete static_cast<R *>(v); }
};

template <class R>
using out_t = std::conditional_t<fits_pointer<R>, out_inline<R>, out_boxed<R>>;

/// What the job returns for an item of carrier In, decayed (a returned reference is
/// copied into the result).
template <class Job, class In>
using result_of_t = std::decay_t<decltype(std::declval<const Job &>().call(
    nullptr, std::declval<typename In::template arg_t<Job>>()))>;

template <class Job, class In>
constexpr bool check_callable() {
  constexpr bool ok = Job::template invocable<typename In::template arg_t<Job>>;
  static_assert(ok || !Job::template invocable_mutable<typename In::template arg_t<Job>>,
                "pmap: the workers call the callable concurrently, through a const reference, so "
                "it cannot be a mutable lambda (or a non-const operator()); keep per-thread "
                "mutable state in pmap::with_state");
  static_assert(ok || Job::template invocable_mutable<typename In::template arg_t<Job>>,
                "pmap: the callable cannot be called with this item type (under "
                "pmap::with_state it is called as fn(State &, item))");
  if constexpr (ok) {
    static_assert(!std::is_void_v<result_of_t<Job, In>>, "pmap: the callable must return a value");
  }
  return ok;
}

// ---- contexts: the heap object C knows as ctx --------------------------------------------

/// Exceptions waiting for their consumer. A failed item's C error code is its slot + 1.
class exception_table {
 public:
  /// Stores `e`; returns the code for the item (>= 1), or -1 if it could not be stored
  /// (out of memory; the consumer then sees std::bad_alloc).
  std::int32_t put(std::exception_ptr e) noexcept {
    try {
      std::lock_guard<std::mutex> lock(m_);
      std::size_t i;
      if (!free_.empty()) {
        i = free_.back();
        free_.pop_back();
        slots_[i] = std::move(e);
      } else {
        if (slots_.size() >= static_cast<std::size_t>(INT32_MAX - 1)) {
          return -1;
        }
        free_.reserve(slots_.size() + 1);  // so take() never allocates
        slots_.push_back(std::move(e));
        i = slots_.size() - 1;
      }
      return static_cast<std::int32_t>(i + 1);
    } catch (...) {
      return -1;
    }
  }

  /// Takes the exception of `code` and frees its slot.
  std::exception_ptr take(std::int32_t code) noexcept {
    std::lock_guard<std::mutex> lock(m_);
    const auto i = static_cast<std::size_t>(code) - 1;
    if (code < 1 || i >= slots_.size() || !slots_[i]) {
      return std::make_exception_ptr(std::bad_alloc());
    }
    std::exception_ptr e = std::move(slots_[i]);
    slots_[i] = nullptr;
    free_.push_back(i);
    return e;
  }

 private:
  std::mutex m_;
  std::vector<std::exception_ptr> slots_;
  std::vector<std::size_t> free_;
};

/// What every context has; pmap::pool owns it and deletes it after pmap_free returns.
struct context_base {
  exception_table errors;
  /// An exception the C++ source (imap) threw. Written by the feeder thread before it
  /// returns the error; read by the consumer after pmap_next hands back the
  /// PMAP_ITEM_SOURCE_FAILED result (ordered by the pool's lock).
  std::exception_ptr source_error;
  /// pmap_next has returned PMAP_DONE (stream::done()).
  std::atomic<bool> done{false};
  /// Frees what a result holds without looking at it (the typed on_drop).
  pmap_drop_fn drop = nullptr;

  context_base() = default;
  context_base(const context_base &) = delete;
  context_base &operator=(const context_base &) = delete;
  virtual ~context_base() = default;

  /// Releases everything of a result that no one will read.
  void discard(const pmap_result &r) noexcept {
    if (drop != nullptr) {
      drop(this, &r);
    }
  }
};

/// The trampolines of one job over one input and one output carrier.
template <class Job, class In, class Out>
struct work_context : context_base {
  Job job;

  explicit work_context(Job j) : job(std::move(j)) { drop = &work_context::on_drop; }

  static std::int32_t work(void *ctx, void *worker, void *item, void **result) noexcept {
    auto &self = *static_cast<work_context *>(ctx);
    std::int32_t code = 0;
    try {
      In::template apply<Job>(item, [&](auto &&arg) {
        *result = Out::make([&]() -> decltype(auto) {
          return self.job.call(worker, std::forward<decltype(arg)>(arg));
        });
      });
    } catch (...) {
      code = self.errors.put(std::current_exception());
    }
    In::release(item);  // the item ran: its input is no longer needed
    return code;
  }

  static void *init(void *ctx, std::uint32_t id) noexcept {
    return static_cast<const work_context *>(ctx)->job.init(id);
  }

  static void exit(void *ctx, std::uint32_t id, void *worker) noexcept {
    static_cast<const work_context *>(ctx)->job.exit(id, worker);
  }

  /// on_drop, and the consumers' way to throw a result away.
  static void on_drop(void *ctx, const pmap_result *r) noexcept {
    auto &self = *static_cast<work_context *>(ctx);
    switch (r->status) {
      case PMAP_ITEM_OK:
        Out::release(r->value);
        break;
      case PMAP_ITEM_FAILED:
        (void)self.errors.take(r->error);
        break;
      case PMAP_ITEM_CANCELLED:
        In::release(r->item);  // never ran, so the worker did not free it
        break;
      default:
        break;
    }
  }

  void fill(pmap_options &o) {
    o.work = &work_context::work;
    o.ctx = static_cast<void *>(this);
    o.on_drop = &work_context::on_drop;
    if constexpr (Job::stateful) {
      o.worker_init = &work_context::init;
      o.worker_exit = &work_context::exit;
    }
  }
};

inline pmap_options c_options(const options &opts) {
  pmap_options o;
  pmap_options_init(&o);
  o.workers = opts.workers;
  o.capacity = opts.capacity;
  o.ordered = opts.ordered;
  o.fail_fast = opts.fail_fast;
  o.name = opts.name.empty() ? nullptr : opts.name.c_str();
  return o;
}

// ---- ranges and iterators ----------------------------------------------------------------

using std::begin;
using std::end;

template <class R>
using iterator_of = decltype(begin(std::declval<R &>()));
template <class R>
using sentinel_of = decltype(end(std::declval<R &>()));

template <class R, class = void>
struct is_range : std::false_type {};
template <class R>
struct is_range<R, std::void_t<iterator_of<R>, sentinel_of<R>>> : std::true_type {};

template <class It, class = void>
struct is_iterator : std::false_type {};
template <class It>
struct is_iterator<It, std::void_t<decltype(*std::declval<It &>()), decltype(++std::declval<It &>())>>
    : std::true_type {};

template <class It, class = void>
struct is_forward : std::false_type {};
template <class It>
struct is_forward<It, std::void_t<typename std::iterator_traits<It>::iterator_category>>
    : std::is_base_of<std::forward_iterator_tag, typename std::iterator_traits<It>::iterator_category> {};

template <class It>
using reference_of = decltype(*std::declval<It &>());

/// A forward iterator to lvalues: its elements keep their address while it moves on, so
/// they can be lent by address.
template <class It>
constexpr bool borrowable = is_forward<It>::value && std::is_lvalue_reference_v<reference_of<It>>;

/// Selects the (first, last, fn) overloads: `It` is an iterator and the third argument is
/// not options (an iterator that is also a range, like directory_iterator, could otherwise
/// make (range, fn, opts) ambiguous).
template <class It, class F>
constexpr bool iterator_call = is_iterator<It>::value && !std::is_same_v<std::decay_t<F>, options>;

/// Number of elements of a forward range given as an iterator and a sentinel.
template <class It, class Sent>
std::size_t count_elements(It first, const Sent &last) {
  if constexpr (std::is_same_v<It, Sent>) {
    return static_cast<std::size_t>(std::distance(first, last));
  } else {
    std::size_t n = 0;
    for (; first != last; ++first) {
      ++n;
    }
    return n;
  }
}

/// The type an element of `It` is stored as when it is not borrowed: the iterator's
/// value_type (a proxy such as vector<bool>'s becomes bool), else the decayed `*it`.
template <class It, class = void>
struct owned_value {
  using type = std::remove_cv_t<std::remove_reference_t<reference_of<It>>>;
};
template <class It>
struct owned_value<It, std::void_t<typename std::iterator_traits<It>::value_type>> {
  using traits_type = std::remove_cv_t<typename std::iterator_traits<It>::value_type>;
  using type = std::conditional_t<!std::is_void_v<traits_type> && std::is_constructible_v<traits_type, reference_of<It>>,
                                  traits_type, std::remove_cv_t<std::remove_reference_t<reference_of<It>>>>;
};

/// The input carrier for the elements of `It`.
template <class It>
using in_for_t = std::conditional_t<borrowable<It>, in_borrowed<std::remove_reference_t<reference_of<It>>>,
                                    in_owned_t<typename owned_value<It>::type>>;

/// An imap source over an iterator pair the caller keeps alive.
template <class It, class Sent>
struct iter_pair {
  It cur;
  Sent last;
  iter_pair(It f, Sent l) : cur(std::move(f)), last(std::move(l)) {}
};

/// An imap source over a range it owns (a temporary moved into the pool).
template <class R>
struct owning_range {
  R range;
  iterator_of<R> cur;
  sentinel_of<R> last;
  template <class U>
  explicit owning_range(U &&r) : range(std::forward<U>(r)), cur(begin(range)), last(end(range)) {}
};

/// imap's context: the work trampolines plus the pull source, which only the pool's feeder
/// thread calls, one call at a time.
template <class Job, class In, class Out, class Src>
struct source_context : work_context<Job, In, Out> {
  Src src;
  bool started = false;

  template <class... A>
  explicit source_context(Job j, A &&...a) : work_context<Job, In, Out>(std::move(j)), src(std::forward<A>(a)...) {}

  static std::int32_t pull(void *ctx, void **item) noexcept {
    auto &self = *static_cast<source_context *>(ctx);
    try {
      // Step lazily, before the next pull, so a throwing ++ never strands an item.
      if (self.started) {
        ++self.src.cur;
      }
      self.started = true;
      if (!(self.src.cur != self.src.last)) {
        return 0;
      }
      *item = In::make(*self.src.cur);
      return 1;
    } catch (...) {
      self.source_error = std::current_exception();
      return -1;
    }
  }

  void fill(pmap_options &o) {
    work_context<Job, In, Out>::fill(o);
    o.source = &source_context::pull;
  }
};

/// Frees the pool first (which waits for every callback to return), then its context.
struct pool_deleter {
  context_base *ctx = nullptr;
  void operator()(pmap_pool *p) const noexcept {
    // pmap_free refuses only when called from inside one of the pool's own callbacks; its
    // threads still use ctx then, so both are left alone (leaked, never corrupted).
    if (pmap_free(p) == PMAP_OK) {
      delete ctx;
    }
  }
};

}  // namespace detail

// =========================================================================================
// pool: the owning handle
// =========================================================================================

/// Owns one C pool (`pmap_pool *`, through a std::unique_ptr with a custom deleter) and
/// the C++ context its callbacks use. Move-only. Destruction is pmap_free (cancel, wait
/// for running items, on_drop for every item never handed back, worker exit, join), then
/// the context is deleted. stream and imap_range each own one (see their pool()).
class pool {
 public:
  /// An empty handle, like a moved-from one.
  pool() noexcept = default;

  /// Adopts a pool made with pmap_new by hand; it will be released with pmap_free.
  explicit pool(pmap_pool *raw) noexcept : ptr_(raw, detail::pool_deleter{}) {}

  /// Used by this header: creates the C pool from `o` (whose ctx is `ctx`) and owns both.
  /// Throws pmap::error (ctx is then deleted).
  pool(detail::internal, const pmap_options &o, std::unique_ptr<detail::context_base> ctx) {
    pmap_pool *raw = nullptr;
    detail::check(pmap_new(&o, &raw));
    ptr_ = std::unique_ptr<pmap_pool, detail::pool_deleter>(raw, detail::pool_deleter{ctx.release()});
  }

  pool(pool &&) noexcept = default;
  pool &operator=(pool &&) noexcept = default;
  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;
  ~pool() = default;

  /// Stop: no new item starts, items not started come back cancelled. Any thread.
  void cancel() const { detail::check(pmap_cancel(capi())); }

  /// End of input (for a source pool: stop pulling). Idempotent; any thread.
  void close() const { detail::check(pmap_close(capi())); }

  /// Whether the pool was cancelled (cancel(), fail_fast, or its owner). Any thread.
  bool is_cancelled() const noexcept { return pmap_is_cancelled(capi()); }

  /// The counters, consistent with each other. Any thread.
  ::pmap::stats stats() const {
    ::pmap::stats s{};
    detail::check(pmap_stats_get(capi(), &s));
    return s;
  }

  /// The C handle, for calls this header does not wrap; still owned by this object.
  pmap_pool *capi() const noexcept { return ptr_.get(); }

  explicit operator bool() const noexcept { return ptr_ != nullptr; }

  /// The C++ context (nullptr for an adopted pool).
  detail::context_base *context() const noexcept { return ptr_.get_deleter().ctx; }

 private:
  std::unique_ptr<pmap_pool, detail::pool_deleter> ptr_;
};

// =========================================================================================
// result: one item handed back by a stream
// =========================================================================================

template <class Out>
class stream_base;

/// One item handed back: its index, and its value or why it has none. Move-only.
template <class T>
class result {
 public:
  result(result &&) noexcept = default;
  result &operator=(result &&) noexcept = default;

  /// Position in the input: 0, 1, 2 ... in submission order.
  std::uint64_t index() const noexcept { return index_; }
  /// The callable returned a value.
  bool ok() const noexcept { return status_ == PMAP_ITEM_OK; }
  /// The item never ran: the pool was cancelled first.
  bool cancelled() const noexcept { return status_ == PMAP_ITEM_CANCELLED; }
  /// PMAP_ITEM_OK, PMAP_ITEM_FAILED (the callable threw) or PMAP_ITEM_CANCELLED.
  std::int32_t status() const noexcept { return status_; }
  /// The worker that ran it, or PMAP_NO_WORKER.
  std::uint32_t worker() const noexcept { return worker_; }

  /// The value. Rethrows the callable's exception; throws pmap::error(PMAP_CANCELLED) for
  /// an item that never ran.
  T &value() & {
    check();
    return *value_;
  }
  const T &value() const & {
    check();
    return *value_;
  }
  T &&value() && {
    check();
    return std::move(*value_);
  }

  /// Null when ok(); otherwise what value() throws.
  std::exception_ptr get_exception() const noexcept {
    if (ok()) {
      return nullptr;
    }
    if (exc_) {
      return exc_;
    }
    return std::make_exception_ptr(error(PMAP_CANCELLED, "pmap: the item was cancelled before it ran"));
  }

  /// Used by this header: takes ownership of what `r` carries.
  result(detail::internal, const pmap_result &r, detail::context_base &ctx) noexcept
      : index_(r.index), status_(r.status), worker_(r.worker) {
    switch (r.status) {
      case PMAP_ITEM_OK:
        value_ = detail::out_t<T>::take(r.value);
        break;
      case PMAP_ITEM_FAILED:
        exc_ = ctx.errors.take(r.error);
        break;
      case PMAP_ITEM_SOURCE_FAILED:
        exc_ = ctx.source_error;
        break;
      default:
        ctx.discard(r);  // cancelled: frees the input that never ran
        break;
    }
  }

 private:
  void check() const {
    if (!ok()) {
      std::rethrow_exception(get_exception());
    }
  }

  typename detail::out_t<T>::holder value_;
  std::exception_ptr exc_;
  std::uint64_t index_;
  std::int32_t status_;
  std::uint32_t worker_;
};

// =========================================================================================
// stream: push/pull from any threads
// =========================================================================================

/// The consuming half of stream<In, Out>, which does not depend on In.
template <class Out>
class stream_base {
 public:
  /// Takes the next result, waiting as long as it takes. std::nullopt once the input is
  /// closed (or the pool cancelled) and every item has been handed back.
  std::optional<result<Out>> next() { return take(-1); }

  /// As next(), waiting at most `timeout` (default 0: do not wait). std::nullopt on
  /// timeout or at the end; done() tells which.
  template <class Rep = std::int64_t, class Period = std::nano>
  std::optional<result<Out>> try_next(std::chrono::duration<Rep, Period> timeout = {}) {
    return take(detail::to_ns(timeout));
  }

  /// next() has reported the end. Any thread.
  bool done() const noexcept { return pool_.context()->done.load(std::memory_order_acquire); }

  /// End of input: later submits throw pmap::error(PMAP_CLOSED). Idempotent; any thread.
  void close() const { pool_.close(); }
  /// Stop: no new item starts; items not started come back cancelled. Any thread.
  void cancel() const { pool_.cancel(); }
  bool is_cancelled() const noexcept { return pool_.is_cancelled(); }
  ::pmap::stats stats() const { return pool_.stats(); }
  const ::pmap::pool &pool() const noexcept { return pool_; }

 protected:
  explicit stream_base(::pmap::pool p) : pool_(std::move(p)) {}

  std::optional<result<Out>> take(std::int64_t timeout_ns) {
    pmap_result r;
    const pmap_status st = pmap_next(pool_.capi(), &r, timeout_ns);
    if (st == PMAP_OK) {
      return std::optional<result<Out>>(std::in_place, detail::internal{}, r, *pool_.context());
    }
    if (st == PMAP_DONE) {
      pool_.context()->done.store(true, std::memory_order_release);
      return std::nullopt;
    }
    if (st == PMAP_TIMEOUT) {
      return std::nullopt;
    }
    detail::throw_status(st);
  }

  ::pmap::pool pool_;
};

/// A push/pull parallel map: producers submit `In` from any threads, consumers take
/// `result<Out>` from any threads, in input order (or as items finish with
/// `ordered = false`), at most `capacity` in flight. The callable is called as `fn(In &&)`
/// (or `fn(In &)` if that is what it takes), or `fn(State &, In &&)` under
/// pmap::with_state; its result must convert to Out. Move-only; destroying it cancels the
/// pool and frees every item still inside.
///
/// Deadlock potential: only next() makes room. A thread that both submits and consumes
/// must use try_submit() and drain with try_next()/next() when it returns false.
template <class In, class Out>
class stream : public stream_base<Out> {
  using in_c = detail::in_owned_t<In>;
  using out_c = detail::out_t<Out>;

 public:
  /// Starts the workers. Throws pmap::error (PMAP_INVALID for bad options, PMAP_SYSTEM).
  template <class F>
  explicit stream(F fn, const options &opts = {}) : stream_base<Out>(make_pool(std::move(fn), opts)) {}

  stream(stream &&) noexcept = default;
  stream &operator=(stream &&) noexcept = default;

  /// Submits `item`, waiting for room. Throws pmap::error: PMAP_CLOSED after close(),
  /// PMAP_CANCELLED after cancel() or a fail_fast failure.
  void submit(In item) { emplace(std::move(item)); }

  /// Submits an item constructed from `args`, waiting for room.
  template <class... A>
  void emplace(A &&...args) {
    void *item = in_c::make(std::forward<A>(args)...);
    const pmap_status st = pmap_submit(this->pool_.capi(), item, -1);
    if (st != PMAP_OK) {
      error e = detail::make_error(st);
      in_c::release(item);  // still ours: a refused item stays with the caller
      throw e;
    }
  }

  /// Submits `item` if there is room within `timeout` (default 0: do not wait). Returns
  /// true (item moved from) or false on timeout (item untouched). Throws pmap::error on
  /// PMAP_CLOSED, PMAP_CANCELLED (item untouched then too).
  template <class Rep = std::int64_t, class Period = std::nano>
  bool try_submit(In &item, std::chrono::duration<Rep, Period> timeout = {}) {
    if constexpr (detail::fits_pointer<In>) {
      const pmap_status st = pmap_submit(this->pool_.capi(), in_c::make(item), detail::to_ns(timeout));
      return accepted(st);
    } else {
      static_assert(std::is_move_assignable_v<In>,
                    "pmap::stream::try_submit needs a move-assignable In to hand a refused item "
                    "back; use submit() or emplace()");
      In *boxed = static_cast<In *>(in_c::make(std::move(item)));
      const pmap_status st = pmap_submit(this->pool_.capi(), boxed, detail::to_ns(timeout));
      if (st == PMAP_OK) {
        return true;
      }
      std::optional<error> e;
      if (st != PMAP_TIMEOUT) {
        e.emplace(detail::make_error(st));
      }
      const std::unique_ptr<In> back(boxed);  // a refused item stays with the caller
      item = std::move(*back);
      if (e) {
        throw *e;
      }
      return false;
    }
  }

 private:
  static bool accepted(pmap_status st) {
    if (st == PMAP_OK) {
      return true;
    }
    if (st == PMAP_TIMEOUT) {
      return false;
    }
    detail::throw_status(st);
  }

  template <class F>
  static ::pmap::pool make_pool(F fn, const options &opts) {
    using job_t = detail::job<F>;
    static_assert(detail::check_callable<job_t, in_c>());
    using R = detail::result_of_t<job_t, in_c>;
    static_assert(std::is_same_v<R, Out> || std::is_constructible_v<Out, R>,
                  "pmap::stream<In, Out>: the callable's result does not convert to Out");
    using ctx_t = detail::work_context<job_t, in_c, out_c>;
    auto ctx = std::make_unique<ctx_t>(job_t{std::move(fn)});
    pmap_options o = detail::c_options(opts);
    ctx->fill(o);
    return ::pmap::pool(detail::internal{}, o, std::move(ctx));
  }
};

/// A stream whose Out is what the callable returns: `auto s = pmap::make_stream<In>(fn)`.
template <class In, class F>
auto make_stream(F fn, const options &opts = {}) {
  using R = detail::result_of_t<detail::job<F>, detail::in_owned_t<In>>;
  return stream<In, R>(std::move(fn), opts);
}

// =========================================================================================
// imap: a lazy input range
// =========================================================================================

/// What pmap::imap returns: an input range of Out, in input order (or as items finish
/// with `ordered = false`), with at most `capacity` items in flight (plus up to 16 taken
/// ahead by the consumer). The pool's feeder thread pulls the input; the iterating thread
/// only consumes.
///
/// Iterate it once: `*it` is the current value (valid until `++it`), `it.index()` its
/// input position. An item whose callable threw rethrows that exception from `begin()` or
/// `++it`, at that item. A cancelled item is skipped: after cancel() the iteration yields
/// what had already run, then ends (is_cancelled() tells). Destroying the range before
/// the end (for `for (auto &v : pmap::imap(...))`: leaving the loop by break or exception)
/// cancels the pool, waits for the items running and for a source call in progress to
/// return, and frees everything.
template <class Out>
class imap_range {
  using out_c = detail::out_t<Out>;

 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Out;
    using difference_type = std::ptrdiff_t;
    using pointer = Out *;
    using reference = Out &;

    iterator() noexcept = default;

    Out &operator*() const noexcept { return *r_->current_; }
    Out *operator->() const noexcept { return std::addressof(*r_->current_); }
    iterator &operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    /// Input position of the current value.
    std::uint64_t index() const noexcept { return r_->current_index_; }

    friend bool operator==(const iterator &a, const iterator &b) noexcept { return a.at_end() == b.at_end(); }
    friend bool operator!=(const iterator &a, const iterator &b) noexcept { return !(a == b); }

   private:
    friend class imap_range;
    explicit iterator(imap_range *r) noexcept : r_(r) {}
    bool at_end() const noexcept { return r_ == nullptr || !r_->current_; }
    imap_range *r_ = nullptr;
  };

  /// Used by pmap::imap.
  imap_range(detail::internal, ::pmap::pool p) : pool_(std::move(p)), buf_(new pmap_result[batch]) {}

  imap_range(imap_range &&o) noexcept
      : pool_(std::move(o.pool_)),
        buf_(std::move(o.buf_)),
        pos_(std::exchange(o.pos_, 0)),
        got_(std::exchange(o.got_, 0)),
        current_(std::move(o.current_)),
        current_index_(o.current_index_),
        started_(o.started_),
        finished_(o.finished_) {}
  imap_range &operator=(imap_range &&) = delete;
  imap_range(const imap_range &) = delete;
  imap_range &operator=(const imap_range &) = delete;

  ~imap_range() {
    if (pool_) {
      pmap_cancel(pool_.capi());  // stop early; pool_'s destructor frees the rest
      for (; pos_ < got_; ++pos_) {
        pool_.context()->discard(buf_[pos_]);
      }
    }
  }

  /// Starts the iteration: waits for the first value. Call once.
  iterator begin() {
    if (!started_) {
      started_ = true;
      advance();
    }
    return iterator(this);
  }
  iterator end() noexcept { return iterator(); }

  /// Stop: no new item starts; the iteration yields what had already run. Any thread.
  void cancel() const { pool_.cancel(); }
  bool is_cancelled() const noexcept { return pool_.is_cancelled(); }
  ::pmap::stats stats() const { return pool_.stats(); }
  const ::pmap::pool &pool() const noexcept { return pool_; }

 private:
  static constexpr std::size_t batch = 16;

  /// Moves to the next value, or to the end (current_ empty). Rethrows an item's
  /// exception, after moving past that item.
  void advance() {
    current_.reset();
    detail::context_base &ctx = *pool_.context();
    for (;;) {
      if (pos_ == got_) {
        if (finished_) {
          return;
        }
        pos_ = got_ = 0;
        const pmap_status st = pmap_next_many(pool_.capi(), buf_.get(), batch, &got_, -1);
        if (st == PMAP_DONE) {
          finished_ = true;
          return;
        }
        if (st != PMAP_OK) {
          detail::throw_status(st);
        }
      }
      const pmap_result &r = buf_[pos_++];
      switch (r.status) {
        case PMAP_ITEM_OK:
          current_ = out_c::take(r.value);
          current_index_ = r.index;
          return;
        case PMAP_ITEM_FAILED:
          std::rethrow_exception(ctx.errors.take(r.error));
        case PMAP_ITEM_SOURCE_FAILED:
          if (ctx.source_error) {
            std::rethrow_exception(ctx.source_error);
          }
          throw error(PMAP_INTERNAL, "pmap::imap: the input failed");
        default:
          ctx.discard(r);  // cancelled: skip
          continue;
      }
    }
  }

  ::pmap::pool pool_;
  std::unique_ptr<pmap_result[]> buf_;
  std::size_t pos_ = 0;
  std::size_t got_ = 0;
  typename out_c::holder current_;
  std::uint64_t current_index_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

namespace detail {

template <class Job, class In, class Src, class... A>
auto make_imap(Job job, const options &opts, A &&...src_args) {
  static_assert(check_callable<Job, In>());
  using R = result_of_t<Job, In>;
  using ctx_t = source_context<Job, In, out_t<R>, Src>;
  auto ctx = std::make_unique<ctx_t>(std::move(job), std::forward<A>(src_args)...);
  pmap_options o = c_options(opts);
  ctx->fill(o);
  return imap_range<R>(internal{}, ::pmap::pool(internal{}, o, std::move(ctx)));
}

}  // namespace detail

/// imap over [first, last): the lazy, bounded parallel map of `fn` (see imap_range).
/// Only the pool's feeder thread touches the iterators, one call at a time; the sequence
/// must outlive the range and must not be modified while it runs. Elements of a forward
/// iterator to lvalues reach `fn` by reference, without a copy; others are copied or
/// moved into the item (a std::move_iterator moves them).
template <class It, class Sent, class F,
          std::enable_if_t<detail::iterator_call<It, F>, int> = 0>
auto imap(It first, Sent last, F fn, const options &opts = {}) {
  using job_t = detail::job<F>;
  return detail::make_imap<job_t, detail::in_for_t<It>, detail::iter_pair<It, Sent>>(job_t{std::move(fn)}, opts,
                                                                                   std::move(first), std::move(last));
}

/// imap over a range (anything with begin()/end()). An lvalue range is borrowed: it must
/// outlive the returned range and stay unmodified while it runs. An rvalue range (a
/// temporary container or view) is moved into the pool, so
/// `for (auto &v : pmap::imap(make_vector(), fn))` is safe.
template <class R, class F, std::enable_if_t<detail::is_range<std::remove_reference_t<R>>::value, int> = 0>
auto imap(R &&range, F fn, const options &opts = {}) {
  using job_t = detail::job<F>;
  if constexpr (std::is_lvalue_reference_v<R>) {
    using Rr = std::remove_reference_t<R>;
    using It = detail::iterator_of<Rr>;
    using std::begin;
    using std::end;
    return detail::make_imap<job_t, detail::in_for_t<It>, detail::iter_pair<It, detail::sentinel_of<Rr>>>(
        job_t{std::move(fn)}, opts, begin(range), end(range));
  } else {
    using Rv = std::remove_cv_t<R>;
    return detail::make_imap<job_t, detail::in_for_t<detail::iterator_of<Rv>>, detail::owning_range<Rv>>(
        job_t{std::move(fn)}, opts, std::move(range));
  }
}

// =========================================================================================
// map: blocking, every result
// =========================================================================================

namespace detail {
struct control_access;
}  // namespace detail

/// Lets another thread cancel a running pmap::map or watch its counters. Not copyable or
/// movable; serves one map at a time. Cancellation is sticky: cancel() before the map
/// starts makes it stop at once, and so does every later map given this control.
class control {
 public:
  control() = default;
  control(const control &) = delete;
  control &operator=(const control &) = delete;

  /// Cancels the map running now (or the next one). Any thread.
  void cancel() {
    std::lock_guard<std::mutex> lock(m_);
    cancelled_ = true;
    if (pool_ != nullptr) {
      pmap_cancel(pool_);
    }
  }

  /// cancel() was called. Any thread.
  bool is_cancelled() const {
    std::lock_guard<std::mutex> lock(m_);
    return cancelled_;
  }

  /// Live counters of the running map; after it, its final counters; before, zeros.
  ::pmap::stats stats() const {
    std::lock_guard<std::mutex> lock(m_);
    if (pool_ == nullptr) {
      return last_;
    }
    ::pmap::stats s{};
    detail::check(pmap_stats_get(pool_, &s));
    return s;
  }

 private:
  friend struct detail::control_access;

  void attach(pmap_pool *p) noexcept {
    std::lock_guard<std::mutex> lock(m_);
    pool_ = p;
    last_ = ::pmap::stats{};
    if (cancelled_) {
      pmap_cancel(p);
    }
  }

  void detach() noexcept {
    std::lock_guard<std::mutex> lock(m_);
    if (pool_ != nullptr) {
      pmap_stats_get(pool_, &last_);
      pool_ = nullptr;
    }
  }

  mutable std::mutex m_;
  pmap_pool *pool_ = nullptr;
  bool cancelled_ = false;
  ::pmap::stats last_{};
};

namespace detail {

/// Attaches a control to a pool for one map; detaches before the pool is freed.
struct control_access {
  control *c;
  control_access(control *ctl, pmap_pool *p) noexcept : c(ctl) {
    if (c != nullptr) {
      c->attach(p);
    }
  }
  ~control_access() {
    if (c != nullptr) {
      c->detach();
    }
  }
  control_access(const control_access &) = delete;
  control_access &operator=(const control_access &) = delete;
};

/// One element of map's preallocated array, for results that do not fit a pointer: the
/// worker constructs the result in place, so no heap item exists at all.
template <class T, class R>
struct map_slot {
  T *in;
  std::optional<R> out;
};

/// The slot context: like work_context, but the worker writes into the slot.
template <class Job, class T, class R>
struct slot_context : context_base {
  Job job;
  explicit slot_context(Job j) : job(std::move(j)) {}

  static std::int32_t work(void *ctx, void *worker, void *item, void ** /*result*/) noexcept {
    auto &self = *static_cast<slot_context *>(ctx);
    auto &s = *static_cast<map_slot<T, R> *>(item);
    try {
      s.out.emplace(self.job.call(worker, *s.in));
      return 0;
    } catch (...) {
      return self.errors.put(std::current_exception());
    }
  }
  static void *init(void *ctx, std::uint32_t id) noexcept {
    return static_cast<const slot_context *>(ctx)->job.init(id);
  }
  static void exit(void *ctx, std::uint32_t id, void *worker) noexcept {
    static_cast<const slot_context *>(ctx)->job.exit(id, worker);
  }
  void fill(pmap_options &o) {
    o.work = &slot_context::work;
    o.ctx = static_cast<void *>(this);
    if constexpr (Job::stateful) {
      o.worker_init = &slot_context::init;
      o.worker_exit = &slot_context::exit;
    }
  }
};

/// Drives a pool from the calling thread: submits `next_item()` for indices 0..n-1 with
/// timeout 0 in batches, and drains with pmap_next_many whenever the window is full,
/// handing each result to `on_result`. Stops submitting when cancelled. Returns how many
/// were submitted. Items must not own anything (addresses): one made but never accepted
/// is simply forgotten.
template <class NextItem, class OnResult>
std::size_t drive(const ::pmap::pool &p, std::size_t n, NextItem &&next_item, OnResult &&on_result) {
  constexpr std::size_t batch = 64;
  void *items[batch];
  pmap_result results[batch];
  std::size_t submitted = 0;
  std::size_t pending = 0;  // items made by next_item() and not yet accepted
  bool open = true;
  for (;;) {
    while (open && submitted < n) {
      const std::size_t k = std::min(batch, n - submitted);
      for (; pending < k; ++pending) {
        items[pending] = next_item();
      }
      std::size_t accepted = 0;
      const pmap_status st = pmap_submit_many(p.capi(), items, k, &accepted, 0);
      submitted += accepted;
      std::copy(items + accepted, items + k, items);  // keep the refused ones, in order
      pending = k - accepted;
      if (st == PMAP_TIMEOUT) {
        break;  // the window is full: drain, then come back
      }
      if (st == PMAP_CANCELLED) {
        open = false;
      } else if (st != PMAP_OK) {
        throw_status(st);
      }
    }
    if (open && submitted == n) {
      check(pmap_close(p.capi()));
      open = false;
    }
    std::size_t got = 0;
    const pmap_status st = pmap_next_many(p.capi(), results, batch, &got, -1);
    if (st == PMAP_DONE) {
      return submitted;
    }
    if (st != PMAP_OK) {
      throw_status(st);
    }
    for (std::size_t i = 0; i < got; ++i) {
      on_result(results[i]);
    }
  }
}

/// The address of `*it` as an item, then steps `it`.
template <class InC, class It>
void *next_address(It &it) {
  void *item = InC::make(*it);
  ++it;
  return item;
}

/// Keeps the exception of the lowest failed index, and whether anything was cancelled.
struct map_failures {
  std::exception_ptr first;
  std::uint64_t first_index = UINT64_MAX;
  bool cancelled = false;

  void note(const pmap_result &r, context_base &ctx) {
    if (r.status == PMAP_ITEM_FAILED) {
      std::exception_ptr e = ctx.errors.take(r.error);
      if (r.index < first_index) {
        first_index = r.index;
        first = std::move(e);
      }
    } else if (r.status != PMAP_ITEM_OK) {
      cancelled = true;
    }
  }

  void rethrow(std::size_t submitted, std::size_t n) const {
    if (first) {
      std::rethrow_exception(first);
    }
    if (cancelled || submitted < n) {
      throw error(PMAP_CANCELLED, "pmap::map: cancelled");
    }
  }
};

/// map over a forward range of lvalues. Elements are lent by address. A result that fits
/// a pointer comes back in C's value and lands straight in the output; a larger one is
/// constructed by the worker in a preallocated slot.
template <class It, class Sent, class F>
auto map_borrowed(It first, Sent last, F fn, const options &opts, control *ctl) {
  using T = std::remove_reference_t<reference_of<It>>;
  using job_t = job<F>;
  using in_c = in_borrowed<T>;
  static_assert(check_callable<job_t, in_c>());
  using R = result_of_t<job_t, in_c>;
  static_assert(std::is_move_constructible_v<R>, "pmap::map: the result type must be movable");

  pmap_options o = c_options(opts);
  o.fail_fast = true;  // the first exception stops the rest
  map_failures failures;
  std::vector<R> out;

  if constexpr (fits_pointer<R> && std::is_default_constructible_v<R>) {
    // Results arrive in any order and go straight to their index.
    const std::size_t n = count_elements(first, last);
    out.resize(n);
    o.ordered = false;
    using ctx_t = work_context<job_t, in_c, out_inline<R>>;
    auto owned = std::make_unique<ctx_t>(job_t{std::move(fn)});
    ctx_t &ctx = *owned;
    ctx.fill(o);
    const ::pmap::pool p(internal{}, o, std::move(owned));
    const control_access attached(ctl, p.capi());
    const std::size_t submitted = drive(
        p, n, [&] { return next_address<in_c>(first); },
        [&](const pmap_result &r) {
          if (r.status == PMAP_ITEM_OK) {
            out[r.index] = unpack<R>(r.value);
          } else {
            failures.note(r, ctx);
          }
        });
    failures.rethrow(submitted, n);
  } else if constexpr (fits_pointer<R>) {
    // Not default-constructible: take results in order and append.
    const std::size_t n = count_elements(first, last);
    out.reserve(n);
    o.ordered = true;
    using ctx_t = work_context<job_t, in_c, out_inline<R>>;
    auto owned = std::make_unique<ctx_t>(job_t{std::move(fn)});
    ctx_t &ctx = *owned;
    ctx.fill(o);
    const ::pmap::pool p(internal{}, o, std::move(owned));
    const control_access attached(ctl, p.capi());
    const std::size_t submitted = drive(
        p, n, [&] { return next_address<in_c>(first); },
        [&](const pmap_result &r) {
          if (r.status == PMAP_ITEM_OK && !failures.first && !failures.cancelled) {
            out.push_back(unpack<R>(r.value));
          } else {
            failures.note(r, ctx);
          }
        });
    failures.rethrow(submitted, n);
  } else {
    // Larger results are built by the workers in slots, then moved out in order. The
    // slots are declared before the pool, so the pool (and every running item) is gone
    // before they are.
    using slot_t = map_slot<T, R>;
    std::vector<slot_t> slots;
    slots.reserve(count_elements(first, last));
    for (; first != last; ++first) {
      slots.push_back(slot_t{std::addressof(*first), std::nullopt});
    }
    const std::size_t n = slots.size();
    o.ordered = false;
    using ctx_t = slot_context<job_t, T, R>;
    auto owned = std::make_unique<ctx_t>(job_t{std::move(fn)});
    ctx_t &ctx = *owned;
    ctx.fill(o);
    const ::pmap::pool p(internal{}, o, std::move(owned));
    const control_access attached(ctl, p.capi());
    std::size_t i = 0;
    const std::size_t submitted = drive(
        p, n, [&]() -> void * { return &slots[i++]; },
        [&](const pmap_result &r) {
          if (r.status != PMAP_ITEM_OK) {
            failures.note(r, ctx);
          }
        });
    failures.rethrow(submitted, n);
    out.reserve(n);
    for (slot_t &s : slots) {
      out.push_back(std::move(*s.out));
    }
  }
  return out;
}

/// map over anything else (input iterators, ranges of prvalues): collects imap's values.
template <class Range>
auto map_collect(Range &&r, control *ctl) {
  using Out = std::decay_t<decltype(*r.begin())>;
  std::vector<Out> out;
  const control_access attached(ctl, r.pool().capi());
  for (auto it = r.begin(), e = r.end(); it != e; ++it) {
    out.push_back(std::move(*it));
  }
  if (r.is_cancelled()) {
    throw error(PMAP_CANCELLED, "pmap::map: cancelled");
  }
  return out;
}

inline options collect_options(const options &opts) {
  options o = opts;
  o.ordered = true;
  o.fail_fast = true;
  return o;
}

template <class It, class Sent, class F>
auto map_iter(It first, Sent last, F fn, const options &opts, control *ctl) {
  if constexpr (borrowable<It>) {
    return map_borrowed(std::move(first), std::move(last), std::move(fn), opts, ctl);
  } else {
    return map_collect(::pmap::imap(std::move(first), std::move(last), std::move(fn), collect_options(opts)), ctl);
  }
}

template <class R, class F>
auto map_range(R &&range, F fn, const options &opts, control *ctl) {
  using It = iterator_of<std::remove_reference_t<R>>;
  // map returns before a temporary range dies, so even a temporary can be borrowed.
  if constexpr (borrowable<It>) {
    using std::begin;
    using std::end;
    return map_borrowed(begin(range), end(range), std::move(fn), opts, ctl);
  } else {
    return map_collect(::pmap::imap(std::forward<R>(range), std::move(fn), collect_options(opts)), ctl);
  }
}

}  // namespace detail

/// Maps `fn` over `range` in parallel and returns the results in input order
/// (std::vector of what `fn` returns). Blocks until every item is done. If `fn` throws,
/// the rest is cancelled and the exception of the first failed item (lowest index) is
/// rethrown here; a cancelled map (see pmap::control) throws pmap::error(PMAP_CANCELLED).
/// Elements of a forward range of lvalues reach `fn` by reference, without a copy; `fn`
/// is called as `fn(elem)`, or `fn(State &, elem)` under pmap::with_state.
template <class R, class F, std::enable_if_t<detail::is_range<std::remove_reference_t<R>>::value, int> = 0>
auto map(R &&range, F fn, const options &opts = {}) {
  return detail::map_range(std::forward<R>(range), std::move(fn), opts, nullptr);
}

/// As map(range, fn, opts), cancellable and observable from another thread through `ctl`.
template <class R, class F, std::enable_if_t<detail::is_range<std::remove_reference_t<R>>::value, int> = 0>
auto map(R &&range, F fn, const options &opts, control &ctl) {
  return detail::map_range(std::forward<R>(range), std::move(fn), opts, &ctl);
}

/// As map(range, fn, opts), over the iterator pair [first, last).
template <class It, class Sent, class F,
          std::enable_if_t<detail::iterator_call<It, F>, int> = 0>
auto map(It first, Sent last, F fn, const options &opts = {}) {
  return detail::map_iter(std::move(first), std::move(last), std::move(fn), opts, nullptr);
}

/// As map(first, last, fn, opts), cancellable and observable through `ctl`.
template <class It, class Sent, class F,
          std::enable_if_t<detail::iterator_call<It, F>, int> = 0>
auto map(It first, Sent last, F fn, const options &opts, control &ctl) {
  return detail::map_iter(std::move(first), std::move(last), std::move(fn), opts, &ctl);
}

}  // namespace pmap

#endif  // PMAP_HPP
