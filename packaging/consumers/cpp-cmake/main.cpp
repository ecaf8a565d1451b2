// Consumer 3: the header-only C++ binding through CMake's pmap::cpp target.
#include <pmap.hpp>

#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

int main() {
  if (std::strcmp(pmap_version(), PMAP_VERSION_STRING) != 0) {
    std::fprintf(stderr, "header is %s but the library is %s\n", PMAP_VERSION_STRING, pmap_version());
    return 1;
  }
  std::vector<long> in(5000);
  std::iota(in.begin(), in.end(), 0L);
  pmap::options opts;
  opts.workers = 2;

  const std::vector<long> squares = pmap::map(in, [](long x) { return x * x; }, opts);
  if (squares.size() != in.size()) return 1;
  for (std::size_t i = 0; i < in.size(); i++) {
    if (squares[i] != in[i] * in[i]) {
      std::fprintf(stderr, "map: result %zu is %ld\n", i, squares[i]);
      return 1;
    }
  }

  long expect = 0;
  for (long v : pmap::imap(in, [](long x) { return x + 1; }, opts)) {
    if (v != ++expect) {
      std::fprintf(stderr, "imap: got %ld, want %ld\n", v, expect);
      return 1;
    }
  }
  if (expect != static_cast<long>(in.size())) return 1;

  std::printf("pmap_version=%s\n", pmap_version());
  std::printf("ok: pmap::map and pmap::imap over %zu items\n", in.size());
  return 0;
}
