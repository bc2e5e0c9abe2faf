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

}  // namespace piracy
