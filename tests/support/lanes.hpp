#pragma once
// Test helper for the vector kernels (engine/exp4.hpp, engine/log4.hpp): a list of arguments
// taken Lanes at a time.
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace piracy::test {

/// The sum of count(x) over the consecutive groups x of Lanes values of `values` (a last,
/// incomplete group is left out).
template <std::size_t Lanes, class Count>
int sum_over_groups(const std::vector<double>& values, Count&& count) {
  int total = 0;
  for (std::size_t k = 0; k + Lanes <= values.size(); k += Lanes) {
    std::array<double, Lanes> x{};
    std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(k), Lanes, x.begin());
    total += count(x);
  }
  return total;
}

}  // namespace piracy::test
