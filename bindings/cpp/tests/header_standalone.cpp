// The header alone, first thing in a translation unit: it must bring all it needs.
#include <pmap.hpp>
