// Tests of LargePageAllocator (engine/large_pages.hpp): a vector that grows through the 2 MiB
// threshold keeps its contents; large blocks are aligned to 2 MiB and, where the kernel gives
// transparent huge pages on request, are eligible for them.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/large_pages.hpp"

using piracy::LargePageAllocator;

namespace {

struct Record {  // the size of the market's title record
  std::int64_t a, b, c, d, e, f, g, h;
};

/// The kernel's transparent-huge-page mode ("always", "madvise", "never"), "" if unknown.
std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos) return "";
  return line.substr(open + 1, close - open - 1);
}

/// The "THPeligible:" value of the mapping of /proc/self/smaps that holds address p, -1 if none.
int thp_eligible(const void* p) {
  std::ifstream in("/proc/self/smaps");
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= addr && addr < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return std::stoi(line.substr(12));
  }
  return -1;
}

}  // namespace

TEST_CASE("LargePageAllocator: a growing vector keeps its contents across the huge-page threshold",
          "[engine][large_pages]") {
  std::vector<Record, LargePageAllocator<Record>> v;
  const std::size_t n = 3 * LargePageAllocator<Record>::kHugePage / sizeof(Record) + 17;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::int64_t>(i);
    v.push_back({k, -k, 2 * k, k ^ 0x5a5a, k + 1, k + 2, k + 3, k * k});
  }
  REQUIRE(v.size() == n);
  for (std::size_t i = 0; i < n; i += 997) {
    const auto k = static_cast<std::int64_t>(i);
    REQUIRE(v[i].a == k);
    REQUIRE(v[i].d == (k ^ 0x5a5a));
    REQUIRE(v[i].h == k * k);
  }
  REQUIRE(v.back().a == static_cast<std::int64_t>(n - 1));
  // Small vectors (operator new) and copies between allocators' blocks.
  std::vector<Record, LargePageAllocator<Record>> small(5, Record{1, 2, 3, 4, 5, 6, 7, 8});
  small = std::vector<Record, LargePageAllocator<Record>>(v.begin(), v.begin() + 3);
  REQUIRE(small[2].a == 2);
}

TEST_CASE("LargePageAllocator: large blocks are 2 MiB aligned and advised for huge pages",
          "[engine][large_pages]") {
  LargePageAllocator<double> alloc;
  const std::size_t n = 5 * LargePageAllocator<double>::kHugePage / sizeof(double) + 3;
  double* p = alloc.allocate(n);
  REQUIRE(reinterpret_cast<std::uintptr_t>(p) % LargePageAllocator<double>::kHugePage == 0);
  for (std::size_t i = 0; i < n; i += 512) p[i] = static_cast<double>(i);
  for (std::size_t i = 0; i < n; i += 512 * 97) REQUIRE(p[i] == static_cast<double>(i));  // reads back
  const std::string mode = thp_mode();
  const int eligible = thp_eligible(p);
  INFO("transparent_hugepage mode: '" << mode << "', THPeligible: " << eligible);
  // Where the kernel hands out huge pages on request (or always), the block's mapping is eligible.
  if ((mode == "madvise" || mode == "always") && eligible >= 0) REQUIRE(eligible == 1);
  alloc.deallocate(p, n);

  double* q = alloc.allocate(100);  // below the threshold: an ordinary block
  q[99] = 1.5;
  REQUIRE(q[99] == 1.5);
  alloc.deallocate(q, 100);
  REQUIRE_THROWS_AS(alloc.allocate(static_cast<std::size_t>(-1) / 4), std::bad_array_new_length);
}
