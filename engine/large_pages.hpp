#pragma once
// An allocator for large, growing arrays that asks Linux for transparent huge pages.
//
// Why: a default run's market keeps one record per title that ever entered it (~500,000 records
// of 64 bytes by 2021), in a std::vector that doubles as it grows. Every doubling allocates fresh
// memory that the kernel maps in 4 KiB page by 4 KiB page on first touch: 68% of the run's ~24,000
// page faults came from that vector (`perf record -e page-faults -g`), and on this machine's
// virtual CPUs a page fault is a trap to the hypervisor (`pvm_irq_enable`, 4% of the run's samples
// in `perf record`). The kernel's default here is to give huge pages only to memory that asks for
// them (/sys/kernel/mm/transparent_hugepage/enabled = madvise): a block of at least 2 MiB, aligned
// to 2 MiB and marked with madvise(MADV_HUGEPAGE), is mapped 2 MiB at a time instead
// (docs/PERFORMANCE.md 20). glibc's own switch for this (GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
// would have to be set in the environment before the program starts. At 1M sceners the same
// pages help the loops over the sceners' ~20 arrays (1-24 MB each) and the per-group and per-slot
// arrays read at random: with 4 KiB pages their translations missed the TLB (docs/PERFORMANCE.md
// 20: 6.5-6.9M scener-steps/s on 1 thread instead of 6.4-6.6M, 10.7-11.1M on 2 instead of 9.7-9.8M).
//
// Small blocks come from operator new as usual. Where the kernel gives no huge pages the hint
// does nothing and the memory is ordinary memory; without MADV_HUGEPAGE (not Linux) large blocks
// come from aligned_alloc. Where
// the data lives never changes a value: results are byte-identical either way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace piracy {

/// A std::allocator replacement: blocks of kHugePage bytes or more are mappings of their own,
/// aligned to kHugePage, rounded up to whole huge pages and advised MADV_HUGEPAGE.
template <class T>
struct LargePageAllocator {
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;  // x86-64's 2 MiB page

  LargePageAllocator() noexcept = default;
  template <class U>
  LargePageAllocator(const LargePageAllocator<U>&) noexcept {}  // NOLINT: rebinding, as std::allocator

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes > static_cast<std::size_t>(-1) / 2 - kHugePage) throw std::bad_alloc();
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T)}));
    const std::size_t rounded = round_up(bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // A mapping of its own (returned to the system whole on deallocate(): a block from malloc's
    // heap stays resident after free, with its huge pages), a huge page longer than needed so
    // that a 2 MiB-aligned block fits; the slack on either side is unmapped.
    void* raw = ::mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) ::munmap(raw, aligned - start);
    const std::uintptr_t tail = start + rounded + kHugePage - (aligned + rounded);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + rounded), tail);
    void* p = reinterpret_cast<void*>(aligned);
    static_cast<void>(::madvise(p, rounded, MADV_HUGEPAGE));  // a hint: failure leaves small pages
#else
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
#endif
    return static_cast<T*>(p);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) {
      ::operator delete(p, std::align_val_t{alignof(T)});
      return;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    ::munmap(p, round_up(bytes));
#else
    std::free(p);
#endif
  }

  template <class U>
  friend bool operator==(const LargePageAllocator&, const LargePageAllocator<U>&) noexcept { return true; }

 private:
  static constexpr std::size_t round_up(std::size_t bytes) noexcept {
    return (bytes + kHugePage - 1) / kHugePage * kHugePage;
  }
};

/// A vector in LargePageAllocator's blocks.
template <class T>
using LargeVector = std::vector<T, LargePageAllocator<T>>;

/// Asks Linux for huge pages on the whole 2 MiB pages inside [p, p + bytes): a hint for memory
/// that another allocator gave (Eigen's arrays come from malloc), given before the memory is first
/// written. It touches no page and changes no value; without MADV_HUGEPAGE it does nothing.
///
/// Why: on this machine's virtual CPUs each 4 KiB page fault is a trap to the hypervisor. The
/// market's row arrays doubled five times during a default run's burn-in, each time written
/// anew 4 KiB page by 4 KiB page: 1.4-27 ms on the market's task on one day, while the agents'
/// day took ~0.3 ms, so the agents waited (docs/PERFORMANCE.md 27).
inline void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t lo = (start + kHuge - 1) / kHuge * kHuge;
  const std::uintptr_t hi = (start + bytes) / kHuge * kHuge;
  if (hi > lo) static_cast<void>(::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE));
#else
  static_cast<void>(p);
  static_cast<void>(bytes);
#endif
}

/// Makes room for one more element of a LargeVector that grows one element at a time, eight
/// times its size at once once its block is a mapping of its own (kHugePage bytes or more),
/// twice as std::vector does below that.
///
/// Why: a mapping's pages take memory only once written. Doubling writes every element twice
/// over the vector's life into fresh pages (the copy into each new block, then the appends) and
/// copies them; with eight times as much room, each growth copies an eighth as often, and the
/// pages touched over the vector's life are ~1.14 times its final size instead of ~2. The market's
/// title records (~490,000 of 64 bytes in a default run) were 2.3% of a 1-thread default run's
/// samples in the kernel's clearing of fresh huge pages for this vector alone (docs/PERFORMANCE.md
/// 27). The room that is never written stays address space, not memory; where a value lives never
/// changes it.
template <class T>
void grow_for_append(LargeVector<T>& v) {
  if (v.size() < v.capacity()) return;
  const std::size_t n = v.size();
  const bool mapped = (n + 1) * sizeof(T) >= LargePageAllocator<T>::kHugePage;
  const std::size_t want = mapped ? 8 * n : 2 * n;
  v.reserve(std::max<std::size_t>({want, n + 1, 16}));
}

}  // namespace piracy
