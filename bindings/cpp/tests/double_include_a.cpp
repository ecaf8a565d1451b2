// One program, two translation units that both include pmap.hpp and instantiate the same
// templates: a missing `inline` or an ODR violation fails to link or misbehaves here.
#include <pmap.hpp>

#include <cstdio>
#include <string>
#include <vector>

int square(int x);
std::vector<int> map_in_b(const std::vector<int> &in);
long stream_in_b(int n);
long imap_in_b(const std::vector<int> &in);

int square(int x) { return x * x; }

int main() {
  std::vector<int> in = {1, 2, 3, 4};
  const std::vector<int> a = pmap::map(in, &square);
  const std::vector<int> b = map_in_b(in);
  long imap_a = 0;
  for (int v : pmap::imap(in, &square)) imap_a += v;
  pmap::stream<int, int> s(&square);
  for (int i = 0; i < 10; ++i) s.submit(i);
  s.close();
  long stream_a = 0;
  while (auto r = s.next()) stream_a += r->value();
  const bool ok = a == b && a == std::vector<int>{1, 4, 9, 16} && imap_a == imap_in_b(in) &&
                  stream_a == stream_in_b(10) && stream_a == 285;
  std::printf("double include: %s\n", ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
