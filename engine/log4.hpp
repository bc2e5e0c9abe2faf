#pragma once
// log() of four values at once, bit for bit what glibc's log() returns for each of them.
//
// Why: the release race draws two logarithms per attempt (the geometric gap to the next slot a
// group attempts, and the attempt's exponential finish time: race() in agents/simulation.cpp);
// through glibc each is a call through the PLT into the ifunc-selected kernel, and together they
// were ~4% of the default run's instructions (callgrind, docs/PERFORMANCE.md 18). Results must
// not change, so a faster *approximation* is out; this is the very algorithm glibc runs,
// vectorized, as engine/exp4.hpp does for exp().
//
// The algorithm and constants are those of glibc 2.28 and later (sysdeps/ieee754/dbl-64/e_log.c
// and e_log_data.c, from Arm's optimized-routines, math/log.c and math/log_data.c; Szabolcs Nagy,
// MIT OR Apache-2.0 WITH LLVM-exception): log(x) = k ln 2 + log(c) + log1p(z/c - 1), with
// x = 2^k z, c near z from a table of N = 128 entries (1/c, log c), and a degree-5 polynomial
// for log1p(r). Inputs within (1 - 2^-4, 1 + 0x1.09p-4) take a second kernel (a degree-11
// polynomial with its own error compensation), and subnormal, negative, zero, inf and NaN inputs
// take special paths. glibc builds that C source several times and picks one copy per CPU at
// load time (sysdeps/x86_64/fpu/multiarch/ifunc-fma4.h): on a CPU with FMA and AVX2 the copy
// compiled with -mfma -mavx2 (__ieee754_log_fma), whose fused multiply-adds round differently
// from separate multiplies and adds. The FMA path below repeats that copy's main kernel
// operation for operation (from the disassembly of Debian 12's libm, glibc 2.36), four lanes
// per instruction, with the same table and constants (read from the library's __log_data).
// Lanes for the near-1 kernel or a special path are recomputed by std::log: for the race's
// uniforms that is 1 in 16 (u >= 0.9375). On any other CPU log4() simply calls std::log.
// tests/engine/log4_test.cpp compares the result with std::log bit for bit on a million
// arguments and the kernel's edges; a glibc whose log() differed would fail it, not change
// results silently.
#include <bit>
#include <cmath>
#include <cstdint>

#include "engine/exp4.hpp"  // fma_path(): glibc picks its FMA copies of exp and log alike

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PIRACY_LOG4_X86 1
#include <immintrin.h>
#else
#define PIRACY_LOG4_X86 0
#endif

namespace piracy::log4 {

namespace detail {
// struct log_data of glibc 2.36 (math_config.h), as its fields are stored.
inline constexpr std::uint64_t kLn2Hi = 0x3fe62e42fefa3800ull;
inline constexpr std::uint64_t kLn2Lo = 0x3d2ef35793c76730ull;
inline constexpr std::uint64_t kA0 = 0xbfe0000000000001ull;  // poly[0..4]: log1p(r) ~ r + A0 r^2 + ...
inline constexpr std::uint64_t kA1 = 0x3fd555555551305bull;
inline constexpr std::uint64_t kA2 = 0xbfcfffffffeb4590ull;
inline constexpr std::uint64_t kA3 = 0x3fc999b324f10111ull;
inline constexpr std::uint64_t kA4 = 0xbfc55575e506c89full;
inline constexpr std::uint64_t kOff = 0x3fe6000000000000ull;  // OFF: the table's subintervals start here
// The near-1 kernel's interval: (ix - kLo) < kHi - kLo as unsigned (LO = asuint64(1 - 0x1p-4),
// HI = asuint64(1 + 0x1.09p-4)).
inline constexpr std::uint64_t kLo = 0x3fee000000000000ull;
inline constexpr std::uint64_t kHi = 0x3ff1090000000000ull;
// tab[2i] = 1/c_i, tab[2i + 1] = log(c_i).
alignas(64) inline constexpr std::uint64_t kTab[256] = {
    0x3ff734f0c3e0de9full, 0xbfd7cc7f79e69000ull,
    0x3ff713786a2ce91full, 0xbfd76feec20d0000ull,
    0x3ff6f26008fab5a0ull, 0xbfd713e31351e000ull,
    0x3ff6d1a61f138c7dull, 0xbfd6b85b38287800ull,
    0x3ff6b1490bc5b4d1ull, 0xbfd65d5590807800ull,
    0x3ff69147332f0cbaull, 0xbfd602d076180000ull,
    0x3ff6719f18224223ull, 0xbfd5a8ca86909000ull,
    0x3ff6524f99a51ed9ull, 0xbfd54f4356035000ull,
    0x3ff63356aa8f24c4ull, 0xbfd4f637c36b4000ull,
    0x3ff614b36b9ddc14ull, 0xbfd49da7fda85000ull,
    0x3ff5f66452c65c4cull, 0xbfd445923989a800ull,
    0x3ff5d867b5912c4full, 0xbfd3edf439b0b800ull,
    0x3ff5babccb5b90deull, 0xbfd396ce448f7000ull,
    0x3ff59d61f2d91a78ull, 0xbfd3401e17bda000ull,
    0x3ff5805612465687ull, 0xbfd2e9e2ef468000ull,
    0x3ff56397cee76bd3ull, 0xbfd2941b3830e000ull,
    0x3ff54725e2a77f93ull, 0xbfd23ec58cda8800ull,
    0x3ff52aff42064583ull, 0xbfd1e9e129279000ull,
    0x3ff50f22dbb2bddfull, 0xbfd1956d2b48f800ull,
    0x3ff4f38f4734ded7ull, 0xbfd141679ab9f800ull,
    0x3ff4d843cfde2840ull, 0xbfd0edd094ef9800ull,
    0x3ff4bd3ec078a3c8ull, 0xbfd09aa518db1000ull,
    0x3ff4a27fc3e0258aull, 0xbfd047e65263b800ull,
    0x3ff4880524d48434ull, 0xbfcfeb224586f000ull,
    0x3ff46dce1b192d0bull, 0xbfcf474a7517b000ull,
    0x3ff453d9d3391854ull, 0xbfcea4443d103000ull,
    0x3ff43a2744b4845aull, 0xbfce020d44e9b000ull,
    0x3ff420b54115f8fbull, 0xbfcd60a22977f000ull,
    0x3ff40782da3ef4b1ull, 0xbfccc00104959000ull,
    0x3ff3ee8f5d57fe8full, 0xbfcc202956891000ull,
    0x3ff3d5d9a00b4ce9ull, 0xbfcb81178d811000ull,
    0x3ff3bd60c010c12bull, 0xbfcae2c9ccd3d000ull,
    0x3ff3a5242b75dab8ull, 0xbfca45402e129000ull,
    0x3ff38d22cd9fd002ull, 0xbfc9a877681df000ull,
    0x3ff3755bc5847a1cull, 0xbfc90c6d69483000ull,
    0x3ff35dce49ad36e2ull, 0xbfc87120a645c000ull,
    0x3ff34679984dd440ull, 0xbfc7d68fb4143000ull,
    0x3ff32f5cceffcb24ull, 0xbfc73cb83c627000ull,
    0x3ff3187775a10d49ull, 0xbfc6a39a9b376000ull,
    0x3ff301c8373e3990ull, 0xbfc60b3154b7a000ull,
    0x3ff2eb4ebb95f841ull, 0xbfc5737d76243000ull,
    0x3ff2d50a0219a9d1ull, 0xbfc4dc7b8fc23000ull,
    0x3ff2bef9a8b7fd2aull, 0xbfc4462c51d20000ull,
    0x3ff2a91c7a0c1babull, 0xbfc3b08abc830000ull,
    0x3ff293726014b530ull, 0xbfc31b996b490000ull,
    0x3ff27dfa5757a1f5ull, 0xbfc2875490a44000ull,
    0x3ff268b39b1d3bbfull, 0xbfc1f3b9f879a000ull,
    0x3ff2539d838ff5bdull, 0xbfc160c8252ca000ull,
    0x3ff23eb7aac9083bull, 0xbfc0ce7f57f72000ull,
    0x3ff22a012ba940b6ull, 0xbfc03cdc49fea000ull,
    0x3ff2157996cc4132ull, 0xbfbf57bdbc4b8000ull,
    0x3ff201201dd2fc9bull, 0xbfbe370896404000ull,
    0x3ff1ecf4494d480bull, 0xbfbd17983ef94000ull,
    0x3ff1d8f5528f6569ull, 0xbfbbf9674ed8a000ull,
    0x3ff1c52311577e7cull, 0xbfbadc79202f6000ull,
    0x3ff1b17c74cb26e9ull, 0xbfb9c0c3e7288000ull,
    0x3ff19e010c2c1ab6ull, 0xbfb8a646b372c000ull,
    0x3ff18ab07bb670bdull, 0xbfb78d01b3ac0000ull,
    0x3ff1778a25efbcb6ull, 0xbfb674f145380000ull,
    0x3ff1648d354c31daull, 0xbfb55e0e6d878000ull,
    0x3ff151b990275fddull, 0xbfb4485cdea1e000ull,
    0x3ff13f0ea432d24cull, 0xbfb333d94d6aa000ull,
    0x3ff12c8b7210f9daull, 0xbfb22079f8c56000ull,
    0x3ff11a3028ecb531ull, 0xbfb10e4698622000ull,
    0x3ff107fbda8434afull, 0xbfaffa6c6ad20000ull,
    0x3ff0f5ee0f4e6bb3ull, 0xbfadda8d4a774000ull,
    0x3ff0e4065d2a9fceull, 0xbfabbcece4850000ull,
    0x3ff0d244632ca521ull, 0xbfa9a1894012c000ull,
    0x3ff0c0a77ce2981aull, 0xbfa788583302c000ull,
    0x3ff0af2f83c636d1ull, 0xbfa5715e67d68000ull,
    0x3ff09ddb98a01339ull, 0xbfa35c8a49658000ull,
    0x3ff08cabaf52e7dfull, 0xbfa149e364154000ull,
    0x3ff07b9f2f4e28fbull, 0xbf9e72c082eb8000ull,
    0x3ff06ab58c358f19ull, 0xbf9a55f152528000ull,
    0x3ff059eea5ecf92cull, 0xbf963d62cf818000ull,
    0x3ff04949cdd12c90ull, 0xbf9228fb8caa0000ull,
    0x3ff038c6c6f0ada9ull, 0xbf8c317b20f90000ull,
    0x3ff02865137932a9ull, 0xbf8419355daa0000ull,
    0x3ff0182427ea7348ull, 0xbf781203c2ec0000ull,
    0x3ff008040614b195ull, 0xbf60040979240000ull,
    0x3fefe01ff726fa1aull, 0x3f6feff384900000ull,
    0x3fefa11cc261ea74ull, 0x3f87dc41353d0000ull,
    0x3fef6310b081992eull, 0x3f93cea3c4c28000ull,
    0x3fef25f63ceeadcdull, 0x3f9b9fc114890000ull,
    0x3feee9c8039113e7ull, 0x3fa1b0d8ce110000ull,
    0x3feeae8078cbb1abull, 0x3fa58a5bd001c000ull,
    0x3fee741aa29d0c9bull, 0x3fa95c8340d88000ull,
    0x3fee3a91830a99b5ull, 0x3fad276aef578000ull,
    0x3fee01e009609a56ull, 0x3fb07598e598c000ull,
    0x3fedca01e577bb98ull, 0x3fb253f5e30d2000ull,
    0x3fed92f20b7c9103ull, 0x3fb42edd8b380000ull,
    0x3fed5cac66fb5cceull, 0x3fb606598757c000ull,
    0x3fed272caa5ede9dull, 0x3fb7da76356a0000ull,
    0x3fecf26e3e6b2ccdull, 0x3fb9ab434e1c6000ull,
    0x3fecbe6da2a77902ull, 0x3fbb78c7bb0d6000ull,
    0x3fec8b266d37086dull, 0x3fbd431332e72000ull,
    0x3fec5894bd5d5804ull, 0x3fbf0a3171de6000ull,
    0x3fec26b533bb9f8cull, 0x3fc067152b914000ull,
    0x3febf583eeece73full, 0x3fc147858292b000ull,
    0x3febc4fd75db96c1ull, 0x3fc2266ecdca3000ull,
    0x3feb951e0c864a28ull, 0x3fc303d7a6c55000ull,
    0x3feb65e2c5ef3e2cull, 0x3fc3dfc33c331000ull,
    0x3feb374867c9888bull, 0x3fc4ba366b7a8000ull,
    0x3feb094b211d304aull, 0x3fc5933928d1f000ull,
    0x3feadbe885f2ef7eull, 0x3fc66acd2418f000ull,
    0x3feaaf1d31603da2ull, 0x3fc740f8ec669000ull,
    0x3fea82e63fd358a7ull, 0x3fc815c0f51af000ull,
    0x3fea5740ef09738bull, 0x3fc8e92954f68000ull,
    0x3fea2c2a90ab4b27ull, 0x3fc9bb3602f84000ull,
    0x3fea01a01393f2d1ull, 0x3fca8bed1c2c0000ull,
    0x3fe9d79f24db3c1bull, 0x3fcb5b515c01d000ull,
    0x3fe9ae2505c7b190ull, 0x3fcc2967ccbcc000ull,
    0x3fe9852ef297ce2full, 0x3fccf635d5486000ull,
    0x3fe95cbaeea44b75ull, 0x3fcdc1bd3446c000ull,
    0x3fe934c69de74838ull, 0x3fce8c01b8cfe000ull,
    0x3fe90d4f2f6752e6ull, 0x3fcf5509c0179000ull,
    0x3fe8e6528effd79dull, 0x3fd00e6c121fb800ull,
    0x3fe8bfce9fcc007cull, 0x3fd071b80e93d000ull,
    0x3fe899c0dabec30eull, 0x3fd0d46b9e867000ull,
    0x3fe87427aa2317fbull, 0x3fd13687334bd000ull,
    0x3fe84f00acb39a08ull, 0x3fd1980d67234800ull,
    0x3fe82a49e8653e55ull, 0x3fd1f8ffe0cc8000ull,
    0x3fe8060195f40260ull, 0x3fd2595fd7636800ull,
    0x3fe7e22563e0a329ull, 0x3fd2b9300914a800ull,
    0x3fe7beb377dcb5adull, 0x3fd3187210436000ull,
    0x3fe79baa679725c2ull, 0x3fd377266dec1800ull,
    0x3fe77907f2170657ull, 0x3fd3d54ffbaf3000ull,
    0x3fe756cadbd6130cull, 0x3fd432eee32fe000ull,
};
}  // namespace detail

/// Whether log4() takes its FMA path here: exactly when glibc would run its FMA copy of log
/// (FMA and AVX2 present: the same test as for exp).
[[nodiscard]] inline bool fma_path() noexcept { return exp4::fma_path(); }

/// Whether log8_avx512_v() may be called here: the FMA path on a CPU with AVX-512F.
[[nodiscard]] inline bool avx512_path() noexcept { return exp4::avx512_path(); }

#if PIRACY_LOG4_X86
/// The FMA path's kernel (call it only when fma_path()): log of each lane of vx.
__attribute__((target("avx2,fma"), always_inline)) inline __m256d log4_fma_v(__m256d vx) noexcept {
  using namespace detail;
#define PIRACY_LOG4_D(bits) _mm256_set1_pd(std::bit_cast<double>(bits))
#define PIRACY_LOG4_I(bits) _mm256_set1_epi64x(static_cast<long long>(bits))
  const __m256i ix = _mm256_castpd_si256(vx);
  // Lanes the main kernel does not take: near 1, i.e. (ix - LO) < HI - LO as unsigned (AVX2
  // compares signed 64-bit integers, hence the flipped sign bits); or top16 - 0x10 >= 0x7fe0 as
  // unsigned (zero, subnormal, negative, inf, NaN), i.e. top16 < 0x10 or top16 > 0x7fef.
  const __m256i sign = PIRACY_LOG4_I(0x8000000000000000ull);
  const __m256i near1 = _mm256_cmpgt_epi64(_mm256_xor_si256(PIRACY_LOG4_I(kHi - kLo), sign),
                                           _mm256_xor_si256(_mm256_sub_epi64(ix, PIRACY_LOG4_I(kLo)), sign));
  const __m256i top = _mm256_srli_epi64(ix, 48);
  const __m256i special = _mm256_or_si256(_mm256_cmpgt_epi64(PIRACY_LOG4_I(0x10), top),
                                          _mm256_cmpgt_epi64(top, PIRACY_LOG4_I(0x7fef)));
  const int other = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(near1, special)));
  // x = 2^k z with z in [OFF, 2 OFF): tmp = ix - OFF, i = (tmp >> 45) % N, k = (int64) tmp >> 52,
  // iz = ix - (tmp & 0xfff << 52).
  const __m256i tmp = _mm256_sub_epi64(ix, PIRACY_LOG4_I(kOff));
  const __m256i i2 = _mm256_slli_epi64(_mm256_and_si256(_mm256_srli_epi64(tmp, 45), PIRACY_LOG4_I(127)), 1);
  // k: an arithmetic shift (AVX2 has none for 64-bit lanes): the top 12 bits, sign-extended.
  const __m256i k = _mm256_sub_epi64(_mm256_xor_si256(_mm256_srli_epi64(tmp, 52), PIRACY_LOG4_I(0x800)),
                                     PIRACY_LOG4_I(0x800));
  // kd = (double) k, exactly (|k| < 2^11): 0x1.8p52 + k has k in its low mantissa bits.
  const __m256d kd = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(k, PIRACY_LOG4_I(0x4338000000000000ull))),
                                   PIRACY_LOG4_D(0x4338000000000000ull));
  const __m256d z = _mm256_castsi256_pd(
      _mm256_sub_epi64(ix, _mm256_and_si256(tmp, PIRACY_LOG4_I(0xfff0000000000000ull))));
  const __m256d invc = _mm256_i64gather_pd(reinterpret_cast<const double*>(kTab), i2, 8);
  const __m256d logc = _mm256_i64gather_pd(reinterpret_cast<const double*>(kTab + 1), i2, 8);
  // log(x) = log1p(z/c - 1) + log(c) + k ln 2, in the FMA copy's order of operations:
  // w = k Ln2hi + logc, r = z invc - 1, hi = w + r, lo = w - hi + r + k Ln2lo,
  // y = lo + r2 A0 + r r2 (A1 + r A2 + r2 (A3 + r A4)) + hi.
  const __m256d w = _mm256_fmadd_pd(kd, PIRACY_LOG4_D(kLn2Hi), logc);
  const __m256d r = _mm256_fmadd_pd(z, invc, _mm256_set1_pd(-1.0));
  const __m256d p12 = _mm256_fmadd_pd(r, PIRACY_LOG4_D(kA2), PIRACY_LOG4_D(kA1));
  const __m256d hi = _mm256_add_pd(r, w);
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d lo = _mm256_fmadd_pd(kd, PIRACY_LOG4_D(kLn2Lo), _mm256_add_pd(_mm256_sub_pd(w, hi), r));
  const __m256d r3 = _mm256_mul_pd(r, r2);
  const __m256d p34 = _mm256_fmadd_pd(r, PIRACY_LOG4_D(kA4), PIRACY_LOG4_D(kA3));
  const __m256d lo2 = _mm256_fmadd_pd(r2, PIRACY_LOG4_D(kA0), lo);
  const __m256d p = _mm256_fmadd_pd(p34, r2, p12);
  const __m256d y = _mm256_add_pd(_mm256_fmadd_pd(r3, p, lo2), hi);
#undef PIRACY_LOG4_D
#undef PIRACY_LOG4_I
  if (other == 0) [[likely]] return y;
  alignas(32) double in[4], res[4];
  _mm256_store_pd(in, vx);
  _mm256_store_pd(res, y);
  for (int l = 0; l < 4; ++l)
    if (other & (1 << l)) res[l] = std::log(in[l]);
  return _mm256_load_pd(res);
}

// (GCC 12's false -Wuninitialized on AVX-512 intrinsics: see engine/exp4.hpp.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
/// log4_fma_v() on eight lanes (call it only when avx512_path()): the same operations in the
/// same order, lane by lane, so the same bits; the lanes log4_fma_v() sends to std::log go there
/// too. (Its tests are integer ones, written with AVX-512's unsigned compares and arithmetic
/// shift: the same masks and the same k.) The race's attempts take the logarithms of four
/// attempts' two uniforms with it in one call (engine/samplers.hpp, docs/PERFORMANCE.md 23).
__attribute__((target("avx512f,avx2,fma"), always_inline)) inline __m512d log8_avx512_v(__m512d vx) noexcept {
  using namespace detail;
#define PIRACY_LOG8_D(bits) _mm512_set1_pd(std::bit_cast<double>(bits))
#define PIRACY_LOG8_I(bits) _mm512_set1_epi64(static_cast<long long>(bits))
  const __m512i ix = _mm512_castpd_si512(vx);
  const __mmask8 near1 = _mm512_cmplt_epu64_mask(_mm512_sub_epi64(ix, PIRACY_LOG8_I(kLo)), PIRACY_LOG8_I(kHi - kLo));
  const __m512i top = _mm512_srli_epi64(ix, 48);
  const __mmask8 special = static_cast<__mmask8>(_mm512_cmplt_epu64_mask(top, PIRACY_LOG8_I(0x10)) |
                                                 _mm512_cmpgt_epu64_mask(top, PIRACY_LOG8_I(0x7fef)));
  const auto other = static_cast<unsigned>(near1 | special);
  const __m512i tmp = _mm512_sub_epi64(ix, PIRACY_LOG8_I(kOff));
  const __m512i i2 = _mm512_slli_epi64(_mm512_and_si512(_mm512_srli_epi64(tmp, 45), PIRACY_LOG8_I(127)), 1);
  const __m512i k = _mm512_srai_epi64(tmp, 52);
  const __m512d kd = _mm512_sub_pd(_mm512_castsi512_pd(_mm512_add_epi64(k, PIRACY_LOG8_I(0x4338000000000000ull))),
                                   PIRACY_LOG8_D(0x4338000000000000ull));
  const __m512d z = _mm512_castsi512_pd(_mm512_sub_epi64(ix, _mm512_and_si512(tmp, PIRACY_LOG8_I(0xfff0000000000000ull))));
  const __m512d invc = _mm512_i64gather_pd(i2, reinterpret_cast<const double*>(kTab), 8);
  const __m512d logc = _mm512_i64gather_pd(i2, reinterpret_cast<const double*>(kTab + 1), 8);
  const __m512d w = _mm512_fmadd_pd(kd, PIRACY_LOG8_D(kLn2Hi), logc);
  const __m512d r = _mm512_fmadd_pd(z, invc, _mm512_set1_pd(-1.0));
  const __m512d p12 = _mm512_fmadd_pd(r, PIRACY_LOG8_D(kA2), PIRACY_LOG8_D(kA1));
  const __m512d hi = _mm512_add_pd(r, w);
  const __m512d r2 = _mm512_mul_pd(r, r);
  const __m512d lo = _mm512_fmadd_pd(kd, PIRACY_LOG8_D(kLn2Lo), _mm512_add_pd(_mm512_sub_pd(w, hi), r));
  const __m512d r3 = _mm512_mul_pd(r, r2);
  const __m512d p34 = _mm512_fmadd_pd(r, PIRACY_LOG8_D(kA4), PIRACY_LOG8_D(kA3));
  const __m512d lo2 = _mm512_fmadd_pd(r2, PIRACY_LOG8_D(kA0), lo);
  const __m512d p = _mm512_fmadd_pd(p34, r2, p12);
  const __m512d y = _mm512_add_pd(_mm512_fmadd_pd(r3, p, lo2), hi);
#undef PIRACY_LOG8_D
#undef PIRACY_LOG8_I
  if (other == 0) [[likely]] return y;
  alignas(64) double in[8], res[8];
  _mm512_store_pd(in, vx);
  _mm512_store_pd(res, y);
  for (int l = 0; l < 8; ++l)
    if (other & (1u << l)) res[l] = std::log(in[l]);
  return _mm512_load_pd(res);
}

/// The AVX-512 path (call it only when avx512_path()): y[l] = log(x[l]) for l < 8.
__attribute__((target("avx512f,avx2,fma"))) inline void log8_avx512(const double* x, double* y) noexcept {
  _mm512_storeu_pd(y, log8_avx512_v(_mm512_loadu_pd(x)));
}
#pragma GCC diagnostic pop

/// The FMA path (call it only when fma_path()): y[l] = log(x_l). The arguments come in
/// registers (a 32-byte load of four fresh 8-byte stores would wait on store forwarding,
/// engine/exp4.hpp).
__attribute__((target("avx2,fma"))) inline void log4_fma(double x0, double x1, double x2, double x3, double* y) noexcept {
  _mm256_storeu_pd(y, log4_fma_v(_mm256_set_pd(x3, x2, x1, x0)));
}
#endif

/// y[l] = std::log(x_l) for l < 4, bit for bit.
inline void log4(double x0, double x1, double x2, double x3, double* y) noexcept {
#if PIRACY_LOG4_X86
  if (fma_path()) {
    log4_fma(x0, x1, x2, x3, y);
    return;
  }
#endif
  y[0] = std::log(x0);
  y[1] = std::log(x1);
  y[2] = std::log(x2);
  y[3] = std::log(x3);
}

}  // namespace piracy::log4
