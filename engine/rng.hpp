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

#include <cstddef>
#include <cstdint>

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
  double uniform() noexcept {
    return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53;
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
/// scener's work. Here the blocks of kLanes streams are computed side by side: with SSE2 (the
/// x86-64 baseline, no -march needed) each `pmuludq` multiplies two lanes, and the eight vectors
/// of a word are independent, so the core overlaps them (docs/PERFORMANCE.md 14).
///
/// The arithmetic is Random123's Philox4x32-10 (philox.h: _philox4x32round, _philox4x32bumpkey),
/// so stream(l) is the very stream Stream(seed, purpose, entity_l, tick) and gives the same
/// values (tests/engine/rng_test.cpp checks both paths against Random123 for random keys and
/// counters).
class StreamBatch {
 public:
  static constexpr std::size_t kLanes = 16;

  /// Computes the first blocks of Stream(seed, purpose, entity(l), tick) for lanes l < n
  /// (n is capped at kLanes; `entity` is called once per lane, in lane order).
  template <class EntityOf>
  void fill(std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf&& entity) noexcept {
    load(seed, purpose, tick, n, entity);
#if defined(__SSE2__)
    rounds_sse2();
#else
    rounds_portable();
#endif
  }

  /// fill() without SIMD: the path of targets without SSE2, kept callable for tests.
  template <class EntityOf>
  void fill_portable(std::uint64_t seed, Purpose purpose, std::int64_t tick, std::size_t n, EntityOf&& entity) noexcept {
    load(seed, purpose, tick, n, entity);
    rounds_portable();
  }

  [[nodiscard]] std::size_t size() const noexcept { return n_; }

  /// Lane l's stream, its first block already drawn (l < size()).
  [[nodiscard]] Stream stream(std::size_t l) const noexcept {
    return Stream(seed_, purpose_, entity_[l], tick_,
                  Stream::Philox::ctr_type{{static_cast<std::uint32_t>(x_[0][l]), static_cast<std::uint32_t>(x_[1][l]),
                                            static_cast<std::uint32_t>(x_[2][l]), static_cast<std::uint32_t>(x_[3][l])}});
  }

 private:
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
    // The counter layout of Stream's constructor. Each 32-bit word sits in the low half of a
    // 64-bit lane: pmuludq multiplies the low halves of 64-bit lanes into full products. The
    // high halves hold garbage after the first round and are never read as part of a word.
    for (std::size_t l = 0; l < kLanes; ++l) {
      x_[0][l] = static_cast<std::uint32_t>(purpose);
      x_[1][l] = static_cast<std::uint32_t>(entity_[l]);
      x_[2][l] = static_cast<std::uint32_t>(tick);
      x_[3][l] = static_cast<std::uint64_t>(static_cast<std::uint32_t>(entity_[l] >> 32) << 24);
    }
  }

  /// One Philox round: (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0) with (hi0, lo0) = M0 x0 and
  /// (hi1, lo1) = M1 x2; the key is bumped between rounds.
  void rounds_portable() noexcept {
    std::uint64_t k0 = static_cast<std::uint32_t>(seed_), k1 = static_cast<std::uint32_t>(seed_ >> 32);
    for (int round = 0; round < 10; ++round) {
      for (std::size_t l = 0; l < kLanes; ++l) {
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
  void rounds_sse2() noexcept {
    constexpr std::size_t kVectors = kLanes / 2;  // two 64-bit lanes per __m128i
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

  std::uint64_t seed_ = 0;
  Purpose purpose_ = Purpose::Test;
  std::int64_t tick_ = 0;
  std::size_t n_ = 0;
  std::uint64_t entity_[kLanes]{};
  alignas(16) std::uint64_t x_[4][kLanes]{};  //!< counter words, then the blocks: word w of lane l in x_[w][l]
};

}  // namespace piracy
