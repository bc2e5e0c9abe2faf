// Tests of the counter-based streams (engine/rng.hpp): the Philox generator against its
// published known answers, the stream's key/counter layout, stream independence, and the
// basic law of Stream::uniform().
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/rng.hpp"

using piracy::Purpose;
using piracy::Stream;

namespace {

using Philox = r123::Philox4x32;

std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> ctr,
                                    std::array<std::uint32_t, 2> key) {
  Philox gen;
  const Philox::ctr_type c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
  const Philox::key_type k = {{key[0], key[1]}};
  const Philox::ctr_type out = gen(c, k);
  return {out.v[0], out.v[1], out.v[2], out.v[3]};
}

std::vector<std::uint32_t> first_u32(Stream s, std::size_t n) {
  std::vector<std::uint32_t> out(n);
  for (auto& x : out) x = s.next_u32();
  return out;
}

// Pearson correlation of two equally long samples.
double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double mx = 0.0, my = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace

TEST_CASE("Philox4x32-10 reproduces Random123's known answers", "[engine][rng]") {
  // Random123 1.14, tests/kat_vectors, the three "philox4x32 10" lines
  // (columns: counter[4] key[2] -> output[4], hex). Exact: any difference is a broken
  // generator or a changed header.
  CHECK(philox({0u, 0u, 0u, 0u}, {0u, 0u}) ==
        std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
               {0xffffffffu, 0xffffffffu}) ==
        std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
               {0xa4093822u, 0x299f31d0u}) ==
        std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("Stream follows its documented key and counter layout", "[engine][rng]") {
  SECTION("seed 0, Purpose::Test, entity 0, tick 0 is the all-zero known answer") {
    Stream s(0, Purpose::Test, 0, 0);
    CHECK(s.blocks() == 0u);  // construction draws nothing
    CHECK(s.next_u32() == 0x6627e8d5u);
    CHECK(s.blocks() == 1u);
    CHECK(s.next_u32() == 0xe169c58du);
    CHECK(s.next_u32() == 0xbc57ac4cu);
    CHECK(s.next_u32() == 0x9b00dbd8u);
    CHECK(s.blocks() == 1u);
    // The second block uses draw index 1 in counter word 3.
    const auto second = philox({0u, 0u, 0u, 1u}, {0u, 0u});
    for (const std::uint32_t expected : second) CHECK(s.next_u32() == expected);
    CHECK(s.blocks() == 2u);
  }
  SECTION("key = 64-bit seed (low word first); counter = (purpose, entity, tick, index)") {
    const std::uint64_t seed = 0x0123456789abcdefull;
    const std::uint64_t entity = 0x0000001287654321ull;  // above 2^32: high bits 0x12
    const std::int64_t tick = -3;
    Stream s(seed, Purpose::Race, entity, tick);
    const std::array<std::uint32_t, 2> key = {0x89abcdefu, 0x01234567u};
    // Counter word 3 starts at (entity >> 32) << 24 and counts blocks from there.
    for (std::uint32_t block = 0; block < 3; ++block) {
      const auto expected = philox({6u, 0x87654321u, 0xfffffffdu, 0x12000000u + block}, key);
      for (const std::uint32_t x : expected) CHECK(s.next_u32() == x);
    }
  }
  SECTION("next_u64 and uniform are built from consecutive u32 values") {
    const auto words = first_u32(Stream(7, Purpose::Market, 3, 11), 8);
    Stream s(7, Purpose::Market, 3, 11);
    CHECK(s.next_u64() == ((std::uint64_t{words[0]} << 32) | words[1]));
    const std::uint64_t bits = (std::uint64_t{words[2]} << 32) | words[3];
    CHECK(s.uniform() == (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53);
    // A u64 straddling a block boundary still takes the next two words in order.
    CHECK(s.next_u32() == words[4]);
    CHECK(s.next_u32() == words[5]);
    CHECK(s.next_u32() == words[6]);
    const std::uint64_t straddle = s.next_u64();
    CHECK((straddle >> 32) == words[7]);
    Stream t(7, Purpose::Market, 3, 11);
    for (int i = 0; i < 8; ++i) t.next_u32();
    CHECK(static_cast<std::uint32_t>(straddle) == t.next_u32());
  }
}

TEST_CASE("streams with different keys differ; equal keys repeat", "[engine][rng]") {
  constexpr std::size_t kWords = 16;
  const auto base = first_u32(Stream(1, Purpose::Decision, 5, 10), kWords);
  // Each variant changes one field of the key, including the parts folded into high bits.
  const std::vector<std::vector<std::uint32_t>> variants = {
      first_u32(Stream(2, Purpose::Decision, 5, 10), kWords),
      first_u32(Stream(1 + (std::uint64_t{1} << 32), Purpose::Decision, 5, 10), kWords),
      first_u32(Stream(1, Purpose::Learning, 5, 10), kWords),
      first_u32(Stream(1, Purpose::Decision, 6, 10), kWords),
      first_u32(Stream(1, Purpose::Decision, 5 + (std::uint64_t{1} << 32), 10), kWords),
      first_u32(Stream(1, Purpose::Decision, 5, 11), kWords),
      first_u32(Stream(1, Purpose::Decision, 5, -10), kWords),
  };
  for (std::size_t v = 0; v < variants.size(); ++v) {
    INFO("variant " << v);
    // Independent 32-bit words coincide with probability 2^-32 each: expect no match at
    // all (the values are fixed, so this is deterministic).
    std::size_t equal_words = 0;
    for (std::size_t i = 0; i < kWords; ++i) equal_words += variants[v][i] == base[i];
    CHECK(equal_words == 0u);
    for (std::size_t w = v + 1; w < variants.size(); ++w) CHECK(variants[v] != variants[w]);
  }
  // Same key: same sequence, however far one reads; a copy continues identically.
  Stream a(1, Purpose::Decision, 5, 10);
  Stream b(1, Purpose::Decision, 5, 10);
  for (int i = 0; i < 1000; ++i) REQUIRE(a.next_u32() == b.next_u32());
  Stream c = a;
  for (int i = 0; i < 100; ++i) REQUIRE(a.next_u32() == c.next_u32());
}

TEST_CASE("Stream::uniform is strictly inside (0,1) with mean 1/2 and variance 1/12",
          "[engine][rng]") {
  constexpr int kN = 1'000'000;
  Stream s(20200825, Purpose::Test, 1, 0);
  double lo = 1.0, hi = 0.0, sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < kN; ++i) {
    const double u = s.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum_sq += (u - 0.5) * (u - 0.5);
  }
  CHECK(lo > 0.0);
  CHECK(hi < 1.0);
  // Standard errors: mean sqrt(1/12 / N) = 2.9e-4; variance sqrt((mu4 - sigma^4) / N) with
  // mu4 = 1/80, sigma^4 = 1/144, = 7.5e-5. Five standard errors: a false alarm has
  // probability ~6e-7, while an off-by-one-bit or half-open bug moves the mean far more.
  const double mean = sum / kN;
  const double var = sum_sq / kN - (mean - 0.5) * (mean - 0.5);
  CHECK(std::abs(mean - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / kN));
  CHECK(std::abs(var - 1.0 / 12.0) < 5.0 * std::sqrt((1.0 / 80.0 - 1.0 / 144.0) / kN));
}

TEST_CASE("adjacent entity and tick streams are uncorrelated", "[engine][rng]") {
  // Under independence the sample correlation of n pairs has standard error 1/sqrt(n);
  // |r| < 5/sqrt(n) = 0.016 for n = 1e5. A counter layout that made neighbouring streams
  // overlap or shift would give |r| near 1.
  constexpr std::size_t kN = 100'000;
  const double bound = 5.0 / std::sqrt(static_cast<double>(kN));
  SECTION("first draw of entity e vs entity e + 1 (one stream per agent and day)") {
    std::vector<double> x(kN), y(kN);
    for (std::size_t e = 0; e < kN; ++e) {
      x[e] = Stream(99, Purpose::Decision, e, 400).uniform();
      y[e] = Stream(99, Purpose::Decision, e + 1, 400).uniform();
    }
    CHECK(std::abs(correlation(x, y)) < bound);
  }
  SECTION("first draw of tick t vs tick t + 1 for one entity") {
    std::vector<double> x(kN), y(kN);
    for (std::size_t t = 0; t < kN; ++t) {
      x[t] = Stream(99, Purpose::Detection, 12, static_cast<std::int64_t>(t)).uniform();
      y[t] = Stream(99, Purpose::Detection, 12, static_cast<std::int64_t>(t) + 1).uniform();
    }
    CHECK(std::abs(correlation(x, y)) < bound);
  }
  SECTION("long sequences of two adjacent entities") {
    Stream a(99, Purpose::Learning, 1000, 3);
    Stream b(99, Purpose::Learning, 1001, 3);
    std::vector<double> x(kN), y(kN);
    for (std::size_t i = 0; i < kN; ++i) {
      x[i] = a.uniform();
      y[i] = b.uniform();
    }
    CHECK(std::abs(correlation(x, y)) < bound);
    // Lag-1 autocorrelation within one stream, too.
    std::vector<double> x0(x.begin(), x.end() - 1), x1(x.begin() + 1, x.end());
    CHECK(std::abs(correlation(x0, x1)) < bound);
  }
}

constexpr std::array kPaths{piracy::StreamBatch::Path::Portable, piracy::StreamBatch::Path::Sse2,
                            piracy::StreamBatch::Path::Avx2, piracy::StreamBatch::Path::Avx512};

TEST_CASE("StreamBatch gives the very streams Stream gives", "[engine][rng]") {
  // The lane-parallel first blocks must be Random123's: any difference changes every result.
  // Random keys, purposes, entities (with bits above 32, which go into counter word 3) and
  // ticks; each lane's first 12 draws span its precomputed block and two computed by refill().
  // Every path this CPU has (portable, SSE2, AVX2, AVX-512), and fill()'s own choice.
  Stream meta(2026, Purpose::Test, 12, 1);
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint64_t seed = meta.next_u64();
    const auto purpose = static_cast<Purpose>(meta.next_u32() % 21);
    const auto tick = static_cast<std::int64_t>(static_cast<std::int32_t>(meta.next_u32()));
    const std::size_t n = 1 + meta.next_u32() % piracy::StreamBatch::kLanes;
    std::vector<std::uint64_t> entity(n);
    for (auto& e : entity) e = meta.next_u64() >> (24 + meta.next_u32() % 40);  // < 2^40
    piracy::StreamBatch batch;
    batch.fill(seed, purpose, tick, n, [&](std::size_t l) { return entity[l]; });
    REQUIRE(batch.size() == n);
    std::vector<piracy::StreamBatch> by_path;  // the portable path at least
    for (const auto path : kPaths) {
      if (!piracy::StreamBatch::supported(path)) continue;
      by_path.emplace_back();
      by_path.back().fill(path, seed, purpose, tick, n, [&](std::size_t l) { return entity[l]; });
      REQUIRE(by_path.back().size() == n);
    }
    for (std::size_t l = 0; l < n; ++l) {
      Stream expected(seed, purpose, entity[l], tick);
      Stream got = batch.stream(l);
      CHECK(got.blocks() == 1u);
      const auto want = first_u32(expected, 12);
      CHECK(first_u32(got, 12) == want);
      for (const auto& b : by_path) CHECK(first_u32(b.stream(l), 12) == want);
    }
  }
  SECTION("the all-zero known answer, on every path this CPU has") {
    for (const auto path : kPaths) {
      if (!piracy::StreamBatch::supported(path)) continue;
      piracy::StreamBatch batch;
      batch.fill(path, 0, Purpose::Test, 0, 1, [](std::size_t) { return 0; });
      CHECK(first_u32(batch.stream(0), 4) ==
            std::vector<std::uint32_t>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
    }
  }
  SECTION("fill() takes the widest path the CPU has unless PIRACY_RNG_PATH names another") {
    using Path = piracy::StreamBatch::Path;
    CHECK(piracy::StreamBatch::supported(Path::Portable));
    const Path chosen = piracy::StreamBatch::default_path();
    CHECK(piracy::StreamBatch::supported(chosen));
    if (std::getenv("PIRACY_RNG_PATH") == nullptr) {
      if (piracy::StreamBatch::supported(Path::Avx2)) CHECK((chosen == Path::Avx2 || chosen == Path::Avx512));
#if defined(__SSE2__)
      CHECK(chosen != Path::Portable);  // x86-64 always has SSE2
#endif
    }
  }
}

TEST_CASE("StreamBatch::fill_blocks gives one stream's blocks in turn", "[engine][rng]") {
  // The race reads a stream's blocks 4, 8 and 16 at a time (agents/simulation.cpp): lane l of
  // fill_blocks(first) must be the block that the stream's draws 4 (first + l) .. 4 (first + l)
  // + 3 read, on every path, for every batch size, and uniform(l, h) its (2 (first + l) + h)-th
  // uniform().
  Stream meta(2026, Purpose::Test, 13, 1);
  for (int trial = 0; trial < 300; ++trial) {
    const std::uint64_t seed = meta.next_u64();
    const auto purpose = static_cast<Purpose>(meta.next_u32() % 21);
    const auto tick = static_cast<std::int64_t>(static_cast<std::int32_t>(meta.next_u32()));
    const std::uint64_t entity = meta.next_u64() >> (24 + meta.next_u32() % 40);  // < 2^40
    const std::uint32_t first = trial % 3 == 0 ? 0u : meta.next_u32() % 5000;
    Stream ref(seed, purpose, entity, tick);
    for (std::uint32_t d = 0; d < 4 * first; ++d) ref.next_u32();  // skip `first` blocks
    Stream uref = ref;
    std::vector<std::uint32_t> want(4 * piracy::StreamBatch::kLanes);
    for (auto& w : want) w = ref.next_u32();
    std::vector<double> want_u(2 * piracy::StreamBatch::kLanes);
    for (auto& u : want_u) u = uref.uniform();
    const auto check = [&](const piracy::StreamBatch& b, std::size_t lanes) {
      REQUIRE(b.size() == lanes);
      for (std::size_t l = 0; l < lanes; ++l) {
        for (std::size_t w = 0; w < 4; ++w) CHECK(b.word(l, w) == want[4 * l + w]);
        CHECK(b.uniform(l, 0) == want_u[2 * l]);
        CHECK(b.uniform(l, 1) == want_u[2 * l + 1]);
      }
    };
    piracy::StreamBatch batch;
    batch.fill_blocks<4>(seed, purpose, entity, tick, first);
    check(batch, 4);
    batch.fill_blocks<8>(seed, purpose, entity, tick, first);
    check(batch, 8);
    batch.fill_blocks(seed, purpose, entity, tick, first);
    check(batch, piracy::StreamBatch::kLanes);
    for (const auto path : kPaths) {
      if (!piracy::StreamBatch::supported(path)) continue;
      piracy::StreamBatch b;
      b.fill_blocks<4>(path, seed, purpose, entity, tick, first);
      check(b, 4);
      b.fill_blocks<8>(path, seed, purpose, entity, tick, first);
      check(b, 8);
      b.fill_blocks(path, seed, purpose, entity, tick, first);
      check(b, piracy::StreamBatch::kLanes);
      // fill() after fill_blocks(): every lane a stream's first block again
      b.fill(path, seed, purpose, tick, 3, [&](std::size_t l) { return entity + l; });
      for (std::size_t l = 0; l < 3; ++l) {
        Stream s(seed, purpose, entity + l, tick);
        CHECK(first_u32(b.stream(l), 8) == first_u32(s, 8));
      }
    }
  }
}
