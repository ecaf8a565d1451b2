// Second translation unit of double_include_a.cpp.
#include <pmap.hpp>

#include <vector>

int square(int x);
std::vector<int> map_in_b(const std::vector<int> &in);
long stream_in_b(int n);
long imap_in_b(const std::vector<int> &in);

std::vector<int> map_in_b(const std::vector<int> &in) { return pmap::map(in, &square); }

long imap_in_b(const std::vector<int> &in) {
  long sum = 0;
  for (int v : pmap::imap(in, &square)) sum += v;
  return sum;
}

long stream_in_b(int n) {
  pmap::stream<int, int> s(&square);
  for (int i = 0; i < n; ++i) s.submit(i);
  s.close();
  long sum = 0;
  while (auto r = s.next()) sum += r->value();
  return sum;
}
