// Must NOT compile: the workers call the callable concurrently through a const reference,
// so a mutable lambda is refused with a message that says so (run_tests.sh checks it).
#include <pmap.hpp>

#include <vector>

int main() {
  std::vector<int> v = {1, 2, 3};
  int calls = 0;
  auto out = pmap::map(v, [calls](int x) mutable { return x + calls++; });
  return static_cast<int>(out.size());
}
