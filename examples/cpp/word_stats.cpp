// word_stats: the three shapes of the pmap C++ binding on one small job.
//
//   1. pmap::imap   parses lines lazily, in order, while the caller prints them;
//   2. pmap::map    computes every word's length at once (blocking, input order);
//   3. pmap::stream a reader thread pushes words, the main thread pulls results, and a
//                   word the callable rejects arrives as an exception on its own item.
//
// Usage: word_stats [FILE]   (no FILE: a built-in text)
// Build: see bindings/cpp/CMakeLists.txt (target word_stats), or from the repository root
//   g++ -std=c++17 -I include -I bindings/cpp examples/cpp/word_stats.cpp
//       -L target/release -lpmap -Wl,-rpath,target/release -pthread

#include <pmap.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

const char *const kSample =
    "It was the best of times, it was the worst of times,\n"
    "it was the age of wisdom, it was the age of foolishness,\n"
    "it was the epoch of belief, it was the epoch of incredulity,\n"
    "it was the season of Light, it was the season of Darkness,\n"
    "it was the spring of hope, it was the winter of despair.\n";

std::vector<std::string> split_words(const std::string &line) {
  std::vector<std::string> words;
  std::string w;
  for (char c : line) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      words.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  return words;
}

/// Lines of a stream, as an input range for pmap::imap.
struct line_reader {
  std::istream *in;
  struct iterator {
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string *;
    using reference = const std::string &;
    std::istream *in = nullptr;
    std::string line;
    const std::string &operator*() const { return line; }
    iterator &operator++() {
      if (!std::getline(*in, line)) in = nullptr;
      return *this;
    }
    bool operator!=(const iterator &o) const { return in != o.in; }
    bool operator==(const iterator &o) const { return in == o.in; }
  };
  iterator begin() const {
    iterator it{in, {}};
    return ++it;
  }
  iterator end() const { return iterator{}; }
};

}  // namespace

int main(int argc, char **argv) {
  std::ifstream file;
  std::istringstream sample(kSample);
  std::istream *in = &sample;
  if (argc > 1) {
    file.open(argv[1]);
    if (!file) {
      std::cerr << "cannot open " << argv[1] << "\n";
      return 1;
    }
    in = &file;
  }

  pmap::options opts;
  opts.workers = 2;
  opts.name = "words";

  try {
    // 1. imap: lines are read by the pool's feeder thread (only it touches the reader),
    //    split on the workers, and handed back here in input order.
    std::vector<std::string> words;
    std::size_t n_lines = 0;
    line_reader reader{in};
    for (auto &line_words : pmap::imap(reader, [](const std::string &line) { return split_words(line); }, opts)) {
      if (n_lines < 3) std::printf("line %zu: %zu words\n", n_lines + 1, line_words.size());
      ++n_lines;
      words.insert(words.end(), std::make_move_iterator(line_words.begin()),
                   std::make_move_iterator(line_words.end()));
    }
    std::printf("%zu lines, %zu words\n", n_lines, words.size());

    // 2. map: every word's length, in input order; the words are passed by reference.
    const std::vector<std::size_t> lengths = pmap::map(words, [](const std::string &w) { return w.size(); }, opts);
    std::map<std::size_t, int> histogram;
    for (std::size_t len : lengths) ++histogram[len];
    std::printf("word lengths:");
    for (const auto &[len, count] : histogram) std::printf(" %zu:%d", len, count);
    std::printf("\n");

    // 3. stream: a producer thread pushes words; the callable keeps a per-worker count
    //    (pmap::with_state) and rejects one word by throwing, which this thread sees on
    //    that word only.
    auto shout = pmap::make_stream<std::string>(
        pmap::with_state([] { return 0L; },
                         [](long &seen, const std::string &w) {
                           ++seen;
                           if (w == "despair") throw std::invalid_argument("no shouting '" + w + "'");
                           std::string up = w;
                           for (char &c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                           return up;
                         }),
        opts);
    std::thread producer([&] {
      for (const auto &w : words) shout.submit(w);
      shout.close();
    });
    std::string last;
    int errors = 0;
    while (auto r = shout.next()) {
      if (r->ok()) {
        last = r->value();
      } else {
        ++errors;
        try {
          r->value();
        } catch (const std::exception &e) {
          std::printf("word %llu: %s\n", static_cast<unsigned long long>(r->index()), e.what());
        }
      }
    }
    producer.join();
    const pmap::stats s = shout.stats();
    std::printf("stream: %llu ok, %llu failed, last ok word %s\n", static_cast<unsigned long long>(s.succeeded),
                static_cast<unsigned long long>(s.failed), last.c_str());
    return errors == (std::find(words.begin(), words.end(), "despair") != words.end() ? 1 : 0) ? 0 : 1;
  } catch (const pmap::error &e) {
    std::cerr << "pmap error " << e.status_name() << ": " << e.what() << "\n";
    return 1;
  }
}
