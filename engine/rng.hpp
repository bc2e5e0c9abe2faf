#pragma once
// Counter-based random streams (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers:
// as easy as 1, 2, 3", SC'11 -- the Philox4x32-10 generator of Random123).
//
// Every draw of the model comes from a Stream keyed by (seed, purpose, entity, tick): the
// key of Philox is the 64-bit seed, the counter is (purpose, entity, tick, draw index).
// Two streams with different keys are statistically independent, and a stream's values do
// not depend on which thread, task or MPI rank asks for them -- so results are identical for
// any thread count. Never share a Stream across tasks; make a new one where it is needed
// (construction costs nothing: it is a few integers).
#include <Random123/philox.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
// Wider paths for StreamBatch, chosen at run time (the build targets the x86-64 baseline, so no
// -march flag is needed and one binary runs everywhere): GCC and Clang compile a function for a
// wider ISA with __attribute__((target)) and report the CPU's features with __builtin_cpu_supports.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PIRACY_RNG_X86_DISPATCH 1
#include <immintrin.h>
#else
#define PIRACY_RNG_X86_DISPATCH 0
#endif

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace piracy {

/// Purposes partition the random streams so that no two uses of randomness ever overlap.
/// Append new values; never renumber (that would change every result).
enum class Purpose : std::uint32_t {
  Test = 0,
  Population = 1,     //!< initial sceners, groups, topsites
  Decision = 2,       //!< scener logit choice
  Learning = 3,       //!< imitation partner choice
  TitleArrival = 4,   //!< new titles per category and day
  TitleAttributes = 5,//!< demand, dates, slots of one title
  Race = 6,           //!< release race attempts and finish times
  Leak = 7,           //!< leaks of Scene releases to public channels
  P2P = 8,            //!< P2P group output
  Detection = 9,      //!< background detection of sceners
  Operation = 10,     //!< scheduled enforcement operations
  Darkness = 11,      //!< precautionary site closures and reopenings
  Structure = 12,     //!< affiliation, site founding, group formation, merger, dissolution
  Entry = 13,         //!< new sceners
  Market = 14,        //!< piracy diffusion and market draws
  AccessMarket = 15,  //!< account sales
  PeerSanction = 16,  //!< peers catching sellers
  Experiment = 17,    //!< experiment designs (replicate seeds, LHS, ...)
  SiteClosure = 18,   //!< ordinary closures of topsites
  Merge = 19,         //!< group mergers
  Affiliation = 20,   //!< groups seeking topsite affiliations
};

class Stream {
 public:
  using Philox = r123::Philox4x32;

  Stream(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick) noexcept
      : key_{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}},
        ctr_{{static_cast<std::uint32_t>(purpose), static_cast<std::uint32_t>(entity),
              static_cast<std::uint32_t>(tick), 0u}},
        hi_{static_cast<std::uint32_t>(entity >> 32)} {
    // Bits 32..39 of the entity go into the top byte of the draw-index word (entities must be
    // < 2^40 and a stream must read < 2^24 blocks, about 67M u32); ticks are taken modulo 2^32.
    ctr_.v[3] = hi_ << 24;
  }

  /// Next 32 random bits.
  std::uint32_t next_u32() noexcept {
    if (pos_ == 4) refill();
    return out_.v[pos_++];
  }
  /// Next 64 random bits.
  std::uint64_t next_u64() noexcept {
    const std::uint64_t a = next_u32();
    return (a << 32) | next_u32();
  }
  /// Uniform on the open interval (0, 1), 53 bits of resolution: safe for log(u) and 1/u.
  double uniform() noexcept { return uniform_of(next_u64()); }
  /// The uniform() that 64 random bits give (the first word drawn in the high half).
  [[nodiscard]] static double uniform_of(std::uint64_t bits) noexcept {
    return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53;
  }
  /// Number of Philox blocks drawn so far (for tests of stream independence).
  [[nodiscard]] std::uint32_t blocks() const noexcept { return blocks_; }

 private:
  friend class StreamBatch;
  /// The stream (seed, purpose, entity, tick) whose first block, `first`, was computed
  /// elsewhere (StreamBatch): the same stream, one block already drawn.
  Stream(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
         const Philox::ctr_type& first) noexcept
      : Stream(seed, purpose, entity, tick) {
    out_ = first;
    ++ctr_.v[3];
    blocks_ = 1;
    pos_ = 0;
  }

  void refill() noexcept {
    out_ = gen_(ctr_, key_);
    ++ctr_.v[3];
    ++blocks_;
    pos_ = 0;
  }

  Philox gen_{};
  Philox::key_type key_;
  Philox::ctr_type ctr_;
  Philox::ctr_type out_{};
  std::uint32_t hi_ = 0;
  std::uint32_t blocks_ = 0;
  unsigned pos_ = 4;
};

/// The first Philox blocks of up to kLanes streams of one purpose and tick, computed together.
///
/// A fresh Stream computes its first block alone: ten rounds, each waiting for the previous
/// one's two 32x32->64-bit multiplications. When every scener opens a stream a day this was ~6%
/// of a run (`Stream::refill` in `perf record`), and the chain of one scener's block held up the
/// scener's work. Here the blocks of kLanes streams are computed side by side, each 32-bit word
/// in the low half of a 64-bit lane, so that one `pmuludq` multiplies a word of every lane of a
/// vector. The vector width is the widest the CPU has, chosen once at run time (Path):
///   - SSE2 (the x86-64 baseline): 2 lanes per vector, eight independent vectors per word;
///   - AVX2: 4 lanes per vector (half the instructions: docs/PERFORMANCE.md 17);
///   - AVX-512F: 8 lanes per vector, and a three-way XOR in one `vpternlogq`.
/// Every path is the same integer arithmetic, so the path never changes a value.
///
/// The arithmetic is Random123's Philox4x32-10 (philox.h: _philox4x32round, _philox4x32bumpkey),
/// so stream(l) is the very stream Stream(seed, purpose, entity_l, tick) and gives the same
/// values (tests/engine/rng_test.cpp checks every path the CPU has against Random123 for random
/// keys and counters).
class StreamBatch {
 public:
  static constexpr std::size_t kLanes = 16;

  /// How the ten rounds are computed. Portable: plain 64-bit integers (any target).
  enum class Path { Portable, Sse2, Avx2, Avx512 };

  /// Whether this build and this CPU can take `path`.
  [[nodiscard]] static bool supported(Path path) noexcept {
    switch (path) {
      case Path::Portable: return true;
#if defined(__SSE2__)
      case Path::Sse2: return true;
#endif
#if PIRACY_RNG_X86_DISPATCH
      case Path::Avx2: return cpu().avx2;
      case Path::Avx512: return cpu().avx512f;
#endif
      default: return false;
    }
  }

  /// The path fill() takes, decided once per process: the one the environment variable
  /// PIRACY_RNG_PATH names (portable, sse2, avx2 or avx512) if the CPU has it (another value is
  /// reported on stderr and ignored); else AVX-512 on AMD CPUs, AVX2 on others, SSE2 without
  /// AVX2. (A precaution, not measured here: 512-bit multiplications lower the clock of the whole
  /// core for a while on Intel's Skylake-SP generation of server CPUs, Intel 64 and IA-32
  /// Architectures Optimization Reference Manual, "Skylake Server Power Management", which would
  /// slow the scalar code around them; the Zen 5 host ran its AVX-512 path 2x as fast as AVX2,
  /// PERFORMANCE 17.) No choice changes a value.
  [[nodiscard]] static Path default_path() noexcept {
    static const Path path = best();
    return path;
  }

  /// The name of a path, as PIRACY_RNG_PATH spells it.
  [[nodiscard]] static const char* name(Path path) noexcept {
    switch (path) {
      case Path::Sse2: return "sse2";
      case Path::Avx2: return "avx2";
      case Path::Avx512: return "avx512";
      default: return "portable";
    }
  }

  /// Computes the first blocks of Stream(seed, purpose, entity(l), tick) for lanes l < n
  /// (n is capped at kLanes; `entity` is called once per lane, in lane order).
  template <class EntityOf>
  void fill(std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf&& entity) noexcept {
    load(seed, purpose, tick, n, entity);
    rounds(default_path());  // supported by construction
  }

  /// fill() along a given path (tests and benchmarks); an unsupported path falls back to the
  /// portable one.
  template <class EntityOf>
  void fill(Path path, std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf&& entity) noexcept {
    load(seed, purpose, tick, n, entity);
    rounds(supported(path) ? path : Path::Portable);
  }

  /// fill() without SIMD: the path of targets without SSE2, kept callable for tests.
  template <class EntityOf>
  void fill_portable(std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf&& entity) noexcept {
    fill(Path::Portable, seed, purpose, tick, n, entity);
  }

  /// Blocks first, first+1, ..., first+Lanes-1 of the one stream Stream(seed, purpose, entity,
  /// tick), one per lane (Lanes: a multiple of 4, at most kLanes): the blocks its draws read in
  /// turn (a fresh Stream's k-th refill computes block k-1, so its u32 draws 4b..4b+3 are block
  /// b's words 0..3). For a stream read block after block along a loop whose exit depends on the
  /// draws (the race's attempts, sample::timed_attempts): the loop takes the lanes in order and
  /// stops where it would have stopped; blocks it does not read change nothing. A loop that
  /// usually stops early asks for a few blocks first. (first + Lanes must stay below 2^24: the
  /// stream's own limit, Stream.) stream(l) is not defined after fill_blocks(): use word() or
  /// uniform().
  template <std::size_t Lanes = kLanes>
  void fill_blocks(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
                   std::uint32_t first) noexcept {
    load_blocks(seed, purpose, entity, tick, first, Lanes);
    rounds<Lanes, true>(default_path());
  }

  /// fill_blocks() along a given path (tests and benchmarks); an unsupported path falls back to
  /// the portable one.
  template <std::size_t Lanes = kLanes>
  void fill_blocks(Path path, std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
                   std::uint32_t first) noexcept {
    load_blocks(seed, purpose, entity, tick, first, Lanes);
    rounds<Lanes, true>(supported(path) ? path : Path::Portable);
  }

  [[nodiscard]] std::size_t size() const noexcept { return n_; }

  /// Word w (0..3) of every lane's block, lane l at [l] (in the low 32 bits of each entry): for
  /// code that reads several lanes' words with one vector load (engine/samplers.hpp).
  [[nodiscard]] const std::uint64_t* words(std::size_t w) const noexcept { return x_[w]; }
  /// Word w (0..3) of lane l's block.
  [[nodiscard]] std::uint32_t word(std::size_t l, std::size_t w) const noexcept {
    return static_cast<std::uint32_t>(x_[w][l]);
  }
  /// The uniform() drawn from words 2h and 2h+1 of lane l's block (h = 0 or 1): the stream's
  /// (2b+h)-th uniform() for block b, when every draw before it was a uniform().
  [[nodiscard]] double uniform(std::size_t l, std::size_t h) const noexcept {
    return Stream::uniform_of((static_cast<std::uint64_t>(word(l, 2 * h)) << 32) | word(l, 2 * h + 1));
  }

  /// Lane l's stream, its first block already drawn (l < size()).
  [[nodiscard]] Stream stream(std::size_t l) const noexcept {
    return Stream(seed_, purpose_, entity_[l], tick_,
                  Stream::Philox::ctr_type{{static_cast<std::uint32_t>(x_[0][l]), static_cast<std::uint32_t>(x_[1][l]),
                                            static_cast<std::uint32_t>(x_[2][l]), static_cast<std::uint32_t>(x_[3][l])}});
  }

 private:
  /// The ten rounds along `path` (supported), for the first Lanes lanes (rounded up to whole
  /// vectors). kBlocks: fill_blocks()'s counters (one entity, word 3 carrying the block index
  /// first_block_ + l); else fill()'s (every lane a stream's first block). A template parameter,
  /// not a flag, so that fill(), which the scener loops call once per 16 sceners, runs exactly
  /// its code from before fill_blocks() (a run-time flag cost enforcement 3.6% more instructions).
  template <std::size_t Lanes = kLanes, bool kBlocks = false>
  void rounds(Path path) noexcept {
    static_assert(Lanes % 4 == 0 && Lanes > 0 && Lanes <= kLanes);
    switch (path) {
#if PIRACY_RNG_X86_DISPATCH
      case Path::Avx512: rounds_avx512<(Lanes + 7) / 8, kBlocks>(); break;
      case Path::Avx2: rounds_avx2<Lanes / 4, kBlocks>(); break;
#endif
#if defined(__SSE2__)
      case Path::Sse2: rounds_sse2<Lanes / 2, kBlocks>(); break;
#endif
      default: rounds_portable<Lanes, kBlocks>(); break;
    }
  }

  static constexpr std::uint64_t kLow = 0xffffffffu;
  static constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // PHILOX_M4x32_0, _1
  static constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // PHILOX_W32_0, _1

  template <class EntityOf>
  void load(std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf& entity) noexcept {
    seed_ = seed;
    purpose_ = purpose;
    tick_ = tick;
    n_ = n < kLanes ? n : kLanes;
    for (std::size_t l = 0; l < n_; ++l) entity_[l] = static_cast<std::uint64_t>(entity(l));
    for (std::size_t l = n_; l < kLanes; ++l) entity_[l] = 0;  // unused lanes: any counter does
  }

  void load_blocks(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
                   std::uint32_t first, std::size_t lanes) noexcept {
    seed_ = seed;
    purpose_ = purpose;
    tick_ = tick;
    n_ = lanes;
    for (std::size_t l = 0; l < kLanes; ++l) entity_[l] = entity;  // (lanes past n_: any counter does)
    first_block_ = first;
  }

  /// The counter layout of Stream's constructor in x_, for the portable and SSE2 paths. Each
  /// 32-bit word sits in the low half of a 64-bit lane: pmuludq multiplies the low halves of
  /// 64-bit lanes into full products. The high halves hold garbage after the first round and
  /// are never read as part of a word.
  template <bool kBlocks>
  void set_counters() noexcept {
    for (std::size_t l = 0; l < kLanes; ++l) {
      x_[0][l] = static_cast<std::uint32_t>(purpose_);
      x_[1][l] = static_cast<std::uint32_t>(entity_[l]);
      x_[2][l] = static_cast<std::uint32_t>(tick_);
      x_[3][l] = static_cast<std::uint32_t>((static_cast<std::uint32_t>(entity_[l] >> 32) << 24) +
                                            (kBlocks ? first_block_ + static_cast<std::uint32_t>(l) : 0u));
    }
  }

  /// One Philox round: (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0) with (hi0, lo0) = M0 x0 and
  /// (hi1, lo1) = M1 x2; the key is bumped between rounds.
  template <std::size_t Lanes, bool kBlocks>
  void rounds_portable() noexcept {
    set_counters<kBlocks>();
    std::uint64_t k0 = static_cast<std::uint32_t>(seed_), k1 = static_cast<std::uint32_t>(seed_ >> 32);
    for (int round = 0; round < 10; ++round) {
      for (std::size_t l = 0; l < Lanes; ++l) {
        const std::uint64_t p0 = (x_[0][l] & kLow) * kM0;
        const std::uint64_t p1 = (x_[2][l] & kLow) * kM1;
        x_[0][l] = (p1 >> 32) ^ x_[1][l] ^ k0;
        x_[2][l] = (p0 >> 32) ^ x_[3][l] ^ k1;
        x_[1][l] = p1;
        x_[3][l] = p0;
      }
      k0 = (k0 + kW0) & kLow;  // the key bumped after the last round is never used
      k1 = (k1 + kW1) & kLow;
    }
  }

#if defined(__SSE2__)
  template <std::size_t kVectors, bool kBlocks>  // two 64-bit lanes per __m128i
  void rounds_sse2() noexcept {
    set_counters<kBlocks>();
    const __m128i m0 = _mm_set1_epi64x(kM0), m1 = _mm_set1_epi64x(kM1);
    const __m128i w0 = _mm_set1_epi64x(kW0), w1 = _mm_set1_epi64x(kW1);
    __m128i k0 = _mm_set1_epi64x(static_cast<std::uint32_t>(seed_));
    __m128i k1 = _mm_set1_epi64x(static_cast<std::uint32_t>(seed_ >> 32));
    __m128i x0[kVectors], x1[kVectors], x2[kVectors], x3[kVectors];
    for (std::size_t v = 0; v < kVectors; ++v) {
      x0[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(&x_[0][2 * v]));
      x1[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(&x_[1][2 * v]));
      x2[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(&x_[2][2 * v]));
      x3[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(&x_[3][2 * v]));
    }
    for (int round = 0; round < 10; ++round) {
      for (std::size_t v = 0; v < kVectors; ++v) {
        const __m128i p0 = _mm_mul_epu32(x0[v], m0);
        const __m128i p1 = _mm_mul_epu32(x2[v], m1);
        x0[v] = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p1, 32), x1[v]), k0);
        x2[v] = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p0, 32), x3[v]), k1);
        x1[v] = p1;
        x3[v] = p0;
      }
      // 32-bit additions: the key words wrap modulo 2^32 and the high halves stay 0.
      k0 = _mm_add_epi32(k0, w0);
      k1 = _mm_add_epi32(k1, w1);
    }
    for (std::size_t v = 0; v < kVectors; ++v) {
      _mm_store_si128(reinterpret_cast<__m128i*>(&x_[0][2 * v]), x0[v]);
      _mm_store_si128(reinterpret_cast<__m128i*>(&x_[1][2 * v]), x1[v]);
      _mm_store_si128(reinterpret_cast<__m128i*>(&x_[2][2 * v]), x2[v]);
      _mm_store_si128(reinterpret_cast<__m128i*>(&x_[3][2 * v]), x3[v]);
    }
  }
#endif

#if PIRACY_RNG_X86_DISPATCH
  struct CpuFeatures {
    bool avx2 = false, avx512f = false, amd = false;
  };
  static const CpuFeatures& cpu() noexcept {
    static const CpuFeatures f = [] {
      __builtin_cpu_init();  // needed when called before main (a static initializer)
      CpuFeatures c;
      c.avx2 = __builtin_cpu_supports("avx2");
      c.avx512f = __builtin_cpu_supports("avx512f");
      c.amd = __builtin_cpu_is("amd");
      return c;
    }();
    return f;
  }
#endif

  static Path best() noexcept {
    if (const char* want = std::getenv("PIRACY_RNG_PATH"); want != nullptr && want[0] != '\0') {
      for (const auto p : {Path::Portable, Path::Sse2, Path::Avx2, Path::Avx512})
        if (std::strcmp(want, name(p)) == 0 && supported(p)) return p;
      // Only speed depends on the path, so a wrong value is not fatal; but it must not pass unseen.
      std::fprintf(stderr,
                   "warning: PIRACY_RNG_PATH=%s is not one of portable, sse2, avx2, avx512 that this CPU "
                   "has; the default path is used\n",
                   want);
    }
#if PIRACY_RNG_X86_DISPATCH
    if (supported(Path::Avx512) && cpu().amd) return Path::Avx512;
#endif
    if (supported(Path::Avx2)) return Path::Avx2;
    if (supported(Path::Sse2)) return Path::Sse2;
    return Path::Portable;
  }

#if PIRACY_RNG_X86_DISPATCH
  // The wide paths build the counter words in registers from entity_ (words 0 and 2 are
  // broadcasts) instead of writing x_ lane by lane and loading it back: 64 stores and loads
  // fewer, and no wide load of x_'s fresh 8-byte stores, which the store buffer cannot forward.
  // (entity_'s own fresh stores still meet that stall, once per batch of 16 streams: building
  // the vectors from scalars was tried, and GCC folded the loads back into one, PERFORMANCE 17.)
  // The inner loops are unrolled so that the words stay in registers: without the pragma GCC 12
  // kept the AVX2 vectors on the stack, written in 128-bit halves and read back whole, and that
  // path was slower than SSE2's.
  //
  // Word 3 of the counter is the entity's bits 32..39 shifted to the top byte (Stream's
  // constructor): (e >> 32) << 24, taken modulo 2^32.

  // The rounds of rounds_sse2() on 4 lanes per vector (GCC and Clang emit vzeroupper on return,
  // so the SSE code around pays no transition penalty).
  template <std::size_t kVectors, bool kBlocks>
  __attribute__((target("avx2"))) void rounds_avx2() noexcept {
    const __m256i m0 = _mm256_set1_epi64x(kM0), m1 = _mm256_set1_epi64x(kM1);
    const __m256i w0 = _mm256_set1_epi64x(kW0), w1 = _mm256_set1_epi64x(kW1);
    const __m256i low = _mm256_set1_epi64x(static_cast<long long>(kLow));
    __m256i k0 = _mm256_set1_epi64x(static_cast<std::uint32_t>(seed_));
    __m256i k1 = _mm256_set1_epi64x(static_cast<std::uint32_t>(seed_ >> 32));
    __m256i x0[kVectors], x1[kVectors], x2[kVectors], x3[kVectors];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kVectors; ++v) {
      // (fill_blocks(): one entity, broadcast from a scalar load that the store buffer forwards,
      // and word 3's block index first_block_ + lane)
      const __m256i e = kBlocks ? _mm256_set1_epi64x(static_cast<long long>(entity_[0]))
                                : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&entity_[4 * v]));
      x0[v] = _mm256_set1_epi64x(static_cast<std::uint32_t>(purpose_));
      x1[v] = _mm256_and_si256(e, low);
      x2[v] = _mm256_set1_epi64x(static_cast<std::uint32_t>(tick_));
      x3[v] = _mm256_slli_epi64(_mm256_srli_epi64(e, 32), 24);
      if constexpr (kBlocks)
        x3[v] = _mm256_add_epi64(x3[v], _mm256_add_epi64(_mm256_set1_epi64x(first_block_),
                                                         _mm256_setr_epi64x(4 * v, 4 * v + 1, 4 * v + 2, 4 * v + 3)));
      x3[v] = _mm256_and_si256(x3[v], low);
    }
    for (int round = 0; round < 10; ++round) {
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) {
        const __m256i p0 = _mm256_mul_epu32(x0[v], m0);
        const __m256i p1 = _mm256_mul_epu32(x2[v], m1);
        x0[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1[v]), k0);
        x2[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3[v]), k1);
        x1[v] = p1;
        x3[v] = p0;
      }
      k0 = _mm256_add_epi32(k0, w0);
      k1 = _mm256_add_epi32(k1, w1);
    }
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kVectors; ++v) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(&x_[0][4 * v]), x0[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(&x_[1][4 * v]), x1[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(&x_[2][4 * v]), x2[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(&x_[3][4 * v]), x3[v]);
    }
  }

  // 8 lanes per vector; (hi ^ x ^ k) in one vpternlogq (truth table 0x96: a ^ b ^ c).
  // (GCC 12's _mm512_set1_epi64 reads an uninitialized variable by design: its warning is noise.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  template <std::size_t kVectors, bool kBlocks>
  __attribute__((target("avx512f"))) void rounds_avx512() noexcept {
    const __m512i m0 = _mm512_set1_epi64(kM0), m1 = _mm512_set1_epi64(kM1);
    const __m512i w0 = _mm512_set1_epi64(kW0), w1 = _mm512_set1_epi64(kW1);
    const __m512i low = _mm512_set1_epi64(static_cast<long long>(kLow));
    __m512i k0 = _mm512_set1_epi64(static_cast<std::uint32_t>(seed_));
    __m512i k1 = _mm512_set1_epi64(static_cast<std::uint32_t>(seed_ >> 32));
    __m512i x0[kVectors], x1[kVectors], x2[kVectors], x3[kVectors];
#pragma GCC unroll 2
    for (std::size_t v = 0; v < kVectors; ++v) {
      const __m512i e = kBlocks ? _mm512_set1_epi64(static_cast<long long>(entity_[0])) : _mm512_loadu_si512(&entity_[8 * v]);
      x0[v] = _mm512_set1_epi64(static_cast<std::uint32_t>(purpose_));
      x1[v] = _mm512_and_si512(e, low);
      x2[v] = _mm512_set1_epi64(static_cast<std::uint32_t>(tick_));
      x3[v] = _mm512_slli_epi64(_mm512_srli_epi64(e, 32), 24);
      if constexpr (kBlocks)
        x3[v] = _mm512_add_epi64(x3[v], _mm512_add_epi64(_mm512_set1_epi64(first_block_),
                                                         _mm512_setr_epi64(8 * v, 8 * v + 1, 8 * v + 2, 8 * v + 3,
                                                                           8 * v + 4, 8 * v + 5, 8 * v + 6, 8 * v + 7)));
      x3[v] = _mm512_and_si512(x3[v], low);
    }
    for (int round = 0; round < 10; ++round) {
#pragma GCC unroll 2
      for (std::size_t v = 0; v < kVectors; ++v) {
        const __m512i p0 = _mm512_mul_epu32(x0[v], m0);
        const __m512i p1 = _mm512_mul_epu32(x2[v], m1);
        x0[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x1[v], k0, 0x96);
        x2[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x3[v], k1, 0x96);
        x1[v] = p1;
        x3[v] = p0;
      }
      k0 = _mm512_add_epi32(k0, w0);
      k1 = _mm512_add_epi32(k1, w1);
    }
#pragma GCC unroll 2
    for (std::size_t v = 0; v < kVectors; ++v) {
      _mm512_store_si512(&x_[0][8 * v], x0[v]);
      _mm512_store_si512(&x_[1][8 * v], x1[v]);
      _mm512_store_si512(&x_[2][8 * v], x2[v]);
      _mm512_store_si512(&x_[3][8 * v], x3[v]);
    }
  }
#pragma GCC diagnostic pop
#endif

  std::uint64_t seed_ = 0;
  Purpose purpose_ = Purpose::Test;
  std::int64_t tick_ = 0;
  std::size_t n_ = 0;
  std::uint64_t entity_[kLanes]{};
  std::uint32_t first_block_ = 0;  //!< fill_blocks(): word 3's block index of lane l is first_block_ + l
  alignas(64) std::uint64_t x_[4][kLanes]{};  //!< counter words, then the blocks: word w of lane l in x_[w][l]
};

}  // namespace piracy
