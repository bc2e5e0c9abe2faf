#pragma once
// exp() of four values at once, bit for bit what glibc's exp() returns for each of them.
//
// Why: the scener's logit choice (decide(), MODEL.md s.3 step 2) takes three exp() a day per
// scener; through glibc each is a call through the PLT into a wrapper that checks errno, then
// the ifunc-selected kernel: ~57 instructions, a fifth of the decision step and ~10% of the
// default run's instructions (callgrind, docs/PERFORMANCE.md 17). Results must not change, so a
// faster *approximation* is out; this is the very algorithm glibc runs, vectorized.
//
// The algorithm and constants are those of glibc 2.28 and later (sysdeps/ieee754/dbl-64/e_exp.c
// and e_exp_data.c, from Arm's optimized-routines, math/exp.c and math/exp_data.c; Szabolcs Nagy,
// MIT OR Apache-2.0 WITH LLVM-exception): exp(x) = 2^(k/N) exp(r) with N = 128, a table of
// 2^(i/N) and a degree-5 polynomial. glibc builds that C source several times and picks one per
// CPU at load time (sysdeps/x86_64/fpu/multiarch/ifunc-avx-fma4.h): on a CPU with FMA and AVX2
// the copy compiled with -mfma -mavx2, whose fused multiply-adds round differently from separate
// multiplies and adds. The FMA path below repeats that copy's operations one for one (from the
// disassembly of Debian 12's libm, glibc 2.36: __ieee754_exp_fma), four lanes per instruction;
// on any other CPU exp4() simply calls std::exp. Arguments outside the fast range of the kernel
// (|x| < 2^-54, |x| >= 512, inf, NaN) go to std::exp too. tests/engine/exp4_test.cpp compares
// the result with std::exp bit for bit on a million arguments and the kernel's edges.
//
// logit_weights4() wraps the kernel for decide(): the four weights of a logit choice, their
// selection (0 for an unavailable option, 1 for the best) and their sum, in one call that takes
// the utilities in registers: a 32-byte load of four fresh 8-byte stores cannot be forwarded
// from the store buffer, and a first version that loaded them from the array decide() had just
// written made decide() slower than glibc's three calls (docs/PERFORMANCE.md 17). A caller of
// exp4() that has just stored x one double at a time pays the same.
#include <bit>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PIRACY_EXP4_X86 1
#include <immintrin.h>
#else
#define PIRACY_EXP4_X86 0
#endif

namespace piracy::exp4 {

namespace detail {
// struct exp_data of glibc 2.36 (math_config.h), as its fields are stored.
inline constexpr std::uint64_t kInvLn2N = 0x40671547652b82feull;   // N / ln 2
inline constexpr std::uint64_t kNegLn2HiN = 0xbf762e42fefa0000ull; // -ln 2 / N, high part
inline constexpr std::uint64_t kNegLn2LoN = 0xbd0cf79abc9e3b3aull; // -ln 2 / N, low part
inline constexpr std::uint64_t kC2 = 0x3fdffffffffffdbdull;
inline constexpr std::uint64_t kC3 = 0x3fc555555555543cull;
inline constexpr std::uint64_t kC4 = 0x3fa55555cf172b91ull;
inline constexpr std::uint64_t kC5 = 0x3f81111167a4d017ull;
inline constexpr std::uint64_t kShift = 0x4338000000000000ull;     // 0x1.8p52
// tab[2i] = the tail of 2^(i/N) (its rounding error), tab[2i + 1] = bits of 2^(i/N) - (i << 45).
alignas(64) inline constexpr std::uint64_t kTab[256] = {
    0x0000000000000000ull, 0x3ff0000000000000ull,
    0x3c9b3b4f1a88bf6eull, 0x3feff63da9fb3335ull,
    0xbc7160139cd8dc5dull, 0x3fefec9a3e778061ull,
    0xbc905e7a108766d1ull, 0x3fefe315e86e7f85ull,
    0x3c8cd2523567f613ull, 0x3fefd9b0d3158574ull,
    0xbc8bce8023f98efaull, 0x3fefd06b29ddf6deull,
    0x3c60f74e61e6c861ull, 0x3fefc74518759bc8ull,
    0x3c90a3e45b33d399ull, 0x3fefbe3ecac6f383ull,
    0x3c979aa65d837b6dull, 0x3fefb5586cf9890full,
    0x3c8eb51a92fdeffcull, 0x3fefac922b7247f7ull,
    0x3c3ebe3d702f9cd1ull, 0x3fefa3ec32d3d1a2ull,
    0xbc6a033489906e0bull, 0x3fef9b66affed31bull,
    0xbc9556522a2fbd0eull, 0x3fef9301d0125b51ull,
    0xbc5080ef8c4eea55ull, 0x3fef8abdc06c31ccull,
    0xbc91c923b9d5f416ull, 0x3fef829aaea92de0ull,
    0x3c80d3e3e95c55afull, 0x3fef7a98c8a58e51ull,
    0xbc801b15eaa59348ull, 0x3fef72b83c7d517bull,
    0xbc8f1ff055de323dull, 0x3fef6af9388c8deaull,
    0x3c8b898c3f1353bfull, 0x3fef635beb6fcb75ull,
    0xbc96d99c7611eb26ull, 0x3fef5be084045cd4ull,
    0x3c9aecf73e3a2f60ull, 0x3fef54873168b9aaull,
    0xbc8fe782cb86389dull, 0x3fef4d5022fcd91dull,
    0x3c8a6f4144a6c38dull, 0x3fef463b88628cd6ull,
    0x3c807a05b0e4047dull, 0x3fef3f49917ddc96ull,
    0x3c968efde3a8a894ull, 0x3fef387a6e756238ull,
    0x3c875e18f274487dull, 0x3fef31ce4fb2a63full,
    0x3c80472b981fe7f2ull, 0x3fef2b4565e27cddull,
    0xbc96b87b3f71085eull, 0x3fef24dfe1f56381ull,
    0x3c82f7e16d09ab31ull, 0x3fef1e9df51fdee1ull,
    0xbc3d219b1a6fbffaull, 0x3fef187fd0dad990ull,
    0x3c8b3782720c0ab4ull, 0x3fef1285a6e4030bull,
    0x3c6e149289cecb8full, 0x3fef0cafa93e2f56ull,
    0x3c834d754db0abb6ull, 0x3fef06fe0a31b715ull,
    0x3c864201e2ac744cull, 0x3fef0170fc4cd831ull,
    0x3c8fdd395dd3f84aull, 0x3feefc08b26416ffull,
    0xbc86a3803b8e5b04ull, 0x3feef6c55f929ff1ull,
    0xbc924aedcc4b5068ull, 0x3feef1a7373aa9cbull,
    0xbc9907f81b512d8eull, 0x3feeecae6d05d866ull,
    0xbc71d1e83e9436d2ull, 0x3feee7db34e59ff7ull,
    0xbc991919b3ce1b15ull, 0x3feee32dc313a8e5ull,
    0x3c859f48a72a4c6dull, 0x3feedea64c123422ull,
    0xbc9312607a28698aull, 0x3feeda4504ac801cull,
    0xbc58a78f4817895bull, 0x3feed60a21f72e2aull,
    0xbc7c2c9b67499a1bull, 0x3feed1f5d950a897ull,
    0x3c4363ed60c2ac11ull, 0x3feece086061892dull,
    0x3c9666093b0664efull, 0x3feeca41ed1d0057ull,
    0x3c6ecce1daa10379ull, 0x3feec6a2b5c13cd0ull,
    0x3c93ff8e3f0f1230ull, 0x3feec32af0d7d3deull,
    0x3c7690cebb7aafb0ull, 0x3feebfdad5362a27ull,
    0x3c931dbdeb54e077ull, 0x3feebcb299fddd0dull,
    0xbc8f94340071a38eull, 0x3feeb9b2769d2ca7ull,
    0xbc87deccdc93a349ull, 0x3feeb6daa2cf6642ull,
    0xbc78dec6bd0f385full, 0x3feeb42b569d4f82ull,
    0xbc861246ec7b5cf6ull, 0x3feeb1a4ca5d920full,
    0x3c93350518fdd78eull, 0x3feeaf4736b527daull,
    0x3c7b98b72f8a9b05ull, 0x3feead12d497c7fdull,
    0x3c9063e1e21c5409ull, 0x3feeab07dd485429ull,
    0x3c34c7855019c6eaull, 0x3feea9268a5946b7ull,
    0x3c9432e62b64c035ull, 0x3feea76f15ad2148ull,
    0xbc8ce44a6199769full, 0x3feea5e1b976dc09ull,
    0xbc8c33c53bef4da8ull, 0x3feea47eb03a5585ull,
    0xbc845378892be9aeull, 0x3feea34634ccc320ull,
    0xbc93cedd78565858ull, 0x3feea23882552225ull,
    0x3c5710aa807e1964ull, 0x3feea155d44ca973ull,
    0xbc93b3efbf5e2228ull, 0x3feea09e667f3bcdull,
    0xbc6a12ad8734b982ull, 0x3feea012750bdabfull,
    0xbc6367efb86da9eeull, 0x3fee9fb23c651a2full,
    0xbc80dc3d54e08851ull, 0x3fee9f7df9519484ull,
    0xbc781f647e5a3ecfull, 0x3fee9f75e8ec5f74ull,
    0xbc86ee4ac08b7db0ull, 0x3fee9f9a48a58174ull,
    0xbc8619321e55e68aull, 0x3fee9feb564267c9ull,
    0x3c909ccb5e09d4d3ull, 0x3feea0694fde5d3full,
    0xbc7b32dcb94da51dull, 0x3feea11473eb0187ull,
    0x3c94ecfd5467c06bull, 0x3feea1ed0130c132ull,
    0x3c65ebe1abd66c55ull, 0x3feea2f336cf4e62ull,
    0xbc88a1c52fb3cf42ull, 0x3feea427543e1a12ull,
    0xbc9369b6f13b3734ull, 0x3feea589994cce13ull,
    0xbc805e843a19ff1eull, 0x3feea71a4623c7adull,
    0xbc94d450d872576eull, 0x3feea8d99b4492edull,
    0x3c90ad675b0e8a00ull, 0x3feeaac7d98a6699ull,
    0x3c8db72fc1f0eab4ull, 0x3feeace5422aa0dbull,
    0xbc65b6609cc5e7ffull, 0x3feeaf3216b5448cull,
    0x3c7bf68359f35f44ull, 0x3feeb1ae99157736ull,
    0xbc93091fa71e3d83ull, 0x3feeb45b0b91ffc6ull,
    0xbc5da9b88b6c1e29ull, 0x3feeb737b0cdc5e5ull,
    0xbc6c23f97c90b959ull, 0x3feeba44cbc8520full,
    0xbc92434322f4f9aaull, 0x3feebd829fde4e50ull,
    0xbc85ca6cd7668e4bull, 0x3feec0f170ca07baull,
    0x3c71affc2b91ce27ull, 0x3feec49182a3f090ull,
    0x3c6dd235e10a73bbull, 0x3feec86319e32323ull,
    0xbc87c50422622263ull, 0x3feecc667b5de565ull,
    0x3c8b1c86e3e231d5ull, 0x3feed09bec4a2d33ull,
    0xbc91bbd1d3bcbb15ull, 0x3feed503b23e255dull,
    0x3c90cc319cee31d2ull, 0x3feed99e1330b358ull,
    0x3c8469846e735ab3ull, 0x3feede6b5579fdbfull,
    0xbc82dfcd978e9db4ull, 0x3feee36bbfd3f37aull,
    0x3c8c1a7792cb3387ull, 0x3feee89f995ad3adull,
    0xbc907b8f4ad1d9faull, 0x3feeee07298db666ull,
    0xbc55c3d956dcaebaull, 0x3feef3a2b84f15fbull,
    0xbc90a40e3da6f640ull, 0x3feef9728de5593aull,
    0xbc68d6f438ad9334ull, 0x3feeff76f2fb5e47ull,
    0xbc91eee26b588a35ull, 0x3fef05b030a1064aull,
    0x3c74ffd70a5fddcdull, 0x3fef0c1e904bc1d2ull,
    0xbc91bdfbfa9298acull, 0x3fef12c25bd71e09ull,
    0x3c736eae30af0cb3ull, 0x3fef199bdd85529cull,
    0x3c8ee3325c9ffd94ull, 0x3fef20ab5fffd07aull,
    0x3c84e08fd10959acull, 0x3fef27f12e57d14bull,
    0x3c63cdaf384e1a67ull, 0x3fef2f6d9406e7b5ull,
    0x3c676b2c6c921968ull, 0x3fef3720dcef9069ull,
    0xbc808a1883ccb5d2ull, 0x3fef3f0b555dc3faull,
    0xbc8fad5d3ffffa6full, 0x3fef472d4a07897cull,
    0xbc900dae3875a949ull, 0x3fef4f87080d89f2ull,
    0x3c74a385a63d07a7ull, 0x3fef5818dcfba487ull,
    0xbc82919e2040220full, 0x3fef60e316c98398ull,
    0x3c8e5a50d5c192acull, 0x3fef69e603db3285ull,
    0x3c843a59ac016b4bull, 0x3fef7321f301b460ull,
    0xbc82d52107b43e1full, 0x3fef7c97337b9b5full,
    0xbc892ab93b470dc9ull, 0x3fef864614f5a129ull,
    0x3c74b604603a88d3ull, 0x3fef902ee78b3ff6ull,
    0x3c83c5ec519d7271ull, 0x3fef9a51fbc74c83ull,
    0xbc8ff7128fd391f0ull, 0x3fefa4afa2a490daull,
    0xbc8dae98e223747dull, 0x3fefaf482d8e67f1ull,
    0x3c8ec3bc41aa2008ull, 0x3fefba1bee615a27ull,
    0x3c842b94c3a9eb32ull, 0x3fefc52b376bba97ull,
    0x3c8a64a931d185eeull, 0x3fefd0765b6e4540ull,
    0xbc8e37bae43be3edull, 0x3fefdbfdad9cbe14ull,
    0x3c77893b4d91cd9dull, 0x3fefe7c1819e90d8ull,
    0x3c5305c14160cc89ull, 0x3feff3c22b8f71f1ull,
};
}  // namespace detail

/// Whether exp4() takes its FMA path here: exactly when glibc would run its FMA copy of exp.
[[nodiscard]] inline bool fma_path() noexcept {
#if PIRACY_EXP4_X86 && defined(__GLIBC__)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
  }();
  return ok;
#else
  return false;
#endif
}

/// Whether exp8_avx512_v() may be called here: the FMA path on a CPU with AVX-512F (never on
/// other targets). Its 512-bit instructions are those of exp4_fma_v() on eight lanes, so its
/// values are the FMA path's.
[[nodiscard]] inline bool avx512_path() noexcept {
#if PIRACY_EXP4_X86 && defined(__GLIBC__)
  static const bool ok = [] {
    __builtin_cpu_init();
    return fma_path() && __builtin_cpu_supports("avx512f");
  }();
  return ok;
#else
  return false;
#endif
}

#if PIRACY_EXP4_X86
/// The FMA path's kernel (call it only when fma_path()): exp of each lane of vx.
__attribute__((target("avx2,fma"), always_inline)) inline __m256d exp4_fma_v(__m256d vx) noexcept {
  using namespace detail;
#define PIRACY_EXP4_D(bits) _mm256_set1_pd(std::bit_cast<double>(bits))
  // The kernel's own range test: top12(|x|) - top12(2^-54) < top12(512) - top12(2^-54), i.e.
  // 0x3c9 <= abstop <= 0x407; other lanes are recomputed by std::exp below.
  const __m256i abstop = _mm256_and_si256(_mm256_srli_epi64(_mm256_castpd_si256(vx), 52), _mm256_set1_epi64x(0x7ff));
  const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(0x3c9), abstop),
                                      _mm256_cmpgt_epi64(abstop, _mm256_set1_epi64x(0x407)));
  const int special = _mm256_movemask_pd(_mm256_castsi256_pd(out));
  // z = x N / ln 2, rounded to the integer ki by the shift; x = k ln 2 / N + r.
  const __m256d shift = PIRACY_EXP4_D(kShift);
  const __m256d kd0 = _mm256_fmadd_pd(vx, PIRACY_EXP4_D(kInvLn2N), shift);
  const __m256i ki = _mm256_castpd_si256(kd0);
  const __m256d kd = _mm256_sub_pd(kd0, shift);
  __m256d r = _mm256_fmadd_pd(kd, PIRACY_EXP4_D(kNegLn2HiN), vx);
  r = _mm256_fmadd_pd(kd, PIRACY_EXP4_D(kNegLn2LoN), r);
  // 2^(k/N) ~= scale (1 + tail)
  const __m256i idx = _mm256_slli_epi64(_mm256_and_si256(ki, _mm256_set1_epi64x(127)), 1);
  const __m256d tail = _mm256_i64gather_pd(reinterpret_cast<const double*>(kTab), idx, 8);
  const __m256i sbits = _mm256_add_epi64(_mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTab + 1), idx, 8),
                                         _mm256_slli_epi64(ki, 45));
  // tmp = tail + r + r^2 (C2 + r C3) + r^4 (C4 + r C5), in the FMA copy's order of operations
  const __m256d r2 = _mm256_mul_pd(r, r);
  const __m256d p45 = _mm256_fmadd_pd(r, PIRACY_EXP4_D(kC5), PIRACY_EXP4_D(kC4));
  const __m256d p23 = _mm256_fmadd_pd(_mm256_fmadd_pd(r, PIRACY_EXP4_D(kC3), PIRACY_EXP4_D(kC2)), r2, _mm256_add_pd(r, tail));
  const __m256d tmp = _mm256_fmadd_pd(_mm256_mul_pd(r2, r2), p45, p23);
  const __m256d scale = _mm256_castsi256_pd(sbits);
  const __m256d y = _mm256_fmadd_pd(scale, tmp, scale);
#undef PIRACY_EXP4_D
  if (special == 0) [[likely]] return y;
  alignas(32) double in[4], res[4];
  _mm256_store_pd(in, vx);
  _mm256_store_pd(res, y);
  for (int l = 0; l < 4; ++l)
    if (special & (1 << l)) res[l] = std::exp(in[l]);
  return _mm256_load_pd(res);
}

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wuninitialized
// reports wherever they are inlined (GCC bug 105593, fixed in GCC 13): silenced for the 512-bit
// kernels here and in agents/decision.hpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
/// exp4_fma_v() on eight lanes (call it only when avx512_path()): the same operations in the
/// same order, lane by lane, so the same bits; lanes outside the kernel's fast range go to
/// std::exp as there. decide() computes eight sceners' weights with it (agents/decision.hpp,
/// docs/PERFORMANCE.md 23).
__attribute__((target("avx512f,avx2,fma"), always_inline)) inline __m512d exp8_avx512_v(__m512d vx) noexcept {
  using namespace detail;
#define PIRACY_EXP8_D(bits) _mm512_set1_pd(std::bit_cast<double>(bits))
  const __m512i abstop = _mm512_and_si512(_mm512_srli_epi64(_mm512_castpd_si512(vx), 52), _mm512_set1_epi64(0x7ff));
  const __mmask8 special = static_cast<__mmask8>(_mm512_cmpgt_epi64_mask(_mm512_set1_epi64(0x3c9), abstop) |
                                                 _mm512_cmpgt_epi64_mask(abstop, _mm512_set1_epi64(0x407)));
  const __m512d shift = PIRACY_EXP8_D(kShift);
  const __m512d kd0 = _mm512_fmadd_pd(vx, PIRACY_EXP8_D(kInvLn2N), shift);
  const __m512i ki = _mm512_castpd_si512(kd0);
  const __m512d kd = _mm512_sub_pd(kd0, shift);
  __m512d r = _mm512_fmadd_pd(kd, PIRACY_EXP8_D(kNegLn2HiN), vx);
  r = _mm512_fmadd_pd(kd, PIRACY_EXP8_D(kNegLn2LoN), r);
  const __m512i idx = _mm512_slli_epi64(_mm512_and_si512(ki, _mm512_set1_epi64(127)), 1);
  const __m512d tail = _mm512_i64gather_pd(idx, reinterpret_cast<const double*>(kTab), 8);
  const __m512i sbits = _mm512_add_epi64(_mm512_i64gather_epi64(idx, reinterpret_cast<const long long*>(kTab + 1), 8),
                                         _mm512_slli_epi64(ki, 45));
  const __m512d r2 = _mm512_mul_pd(r, r);
  const __m512d p45 = _mm512_fmadd_pd(r, PIRACY_EXP8_D(kC5), PIRACY_EXP8_D(kC4));
  const __m512d p23 = _mm512_fmadd_pd(_mm512_fmadd_pd(r, PIRACY_EXP8_D(kC3), PIRACY_EXP8_D(kC2)), r2, _mm512_add_pd(r, tail));
  const __m512d tmp = _mm512_fmadd_pd(_mm512_mul_pd(r2, r2), p45, p23);
  const __m512d scale = _mm512_castsi512_pd(sbits);
  const __m512d y = _mm512_fmadd_pd(scale, tmp, scale);
#undef PIRACY_EXP8_D
  if (special == 0) [[likely]] return y;
  alignas(64) double in[8], res[8];
  _mm512_store_pd(in, vx);
  _mm512_store_pd(res, y);
  for (int l = 0; l < 8; ++l)
    if (special & (1 << l)) res[l] = std::exp(in[l]);
  return _mm512_load_pd(res);
}

/// The AVX-512 path (call it only when avx512_path()): y[l] = exp(x[l]) for l < 8 (tests).
__attribute__((target("avx512f,avx2,fma"))) inline void exp8_avx512(const double* x, double* y) noexcept {
  _mm512_storeu_pd(y, exp8_avx512_v(_mm512_loadu_pd(x)));
}
#pragma GCC diagnostic pop

/// The FMA path (call it only when fma_path()): y[l] = exp(x[l]) for l < 4.
__attribute__((target("avx2,fma"))) inline void exp4_fma(const double* x, double* y) noexcept {
  _mm256_storeu_pd(y, exp4_fma_v(_mm256_loadu_pd(x)));
}

/// logit_weights4() on the FMA path. No multiply here is followed by an add that the compiler
/// could fuse: the operations are those of the scalar code, lane by lane.
__attribute__((target("avx2,fma"))) inline double logit_weights4_fma(double u0, double u1, double u2, double u3,
                                                                    double umax, double beta, double* w) noexcept {
  // The utilities come in registers: a 32-byte load of four 8-byte values just stored one at a
  // time could not be forwarded from the store buffer and would wait for the cache.
  const __m256d vu = _mm256_set_pd(u3, u2, u1, u0);
  const __m256d vmax = _mm256_set1_pd(umax);
  const __m256d unavailable = _mm256_cmp_pd(vu, _mm256_set1_pd(-HUGE_VAL), _CMP_EQ_OQ);
  const __m256d best = _mm256_cmp_pd(vu, vmax, _CMP_EQ_OQ);
  // Their lanes take a placeholder in the kernel's fast range (exp(beta * -inf) is NaN when beta = 0).
  const __m256d arg = _mm256_blendv_pd(_mm256_mul_pd(_mm256_set1_pd(beta), _mm256_sub_pd(vu, vmax)),
                                       _mm256_set1_pd(-1.0), _mm256_or_pd(unavailable, best));
  const __m256d e = exp4_fma_v(arg);
  // u = -inf: 0; else u = umax: 1; else the exp.
  const __m256d v = _mm256_andnot_pd(unavailable, _mm256_blendv_pd(e, _mm256_set1_pd(1.0), best));
  _mm256_storeu_pd(w, v);
  double sum = 0;
  sum += w[0];
  sum += w[1];
  sum += w[2];
  sum += w[3];
  return sum;
}
#endif

/// y[l] = std::exp(x[l]) for l < 4, bit for bit (x and y may be the same array).
inline void exp4(const double* x, double* y) noexcept {
#if PIRACY_EXP4_X86
  if (fma_path()) {
    exp4_fma(x, y);
    return;
  }
#endif
  for (int l = 0; l < 4; ++l) y[l] = std::exp(x[l]);
}

/// The weights of a logit choice among four options of utilities u (umax their maximum) and
/// precision beta, as the scalar code below computes them, bit for bit: 0 for an unavailable
/// option (u = -inf; exp(beta * -inf) would be NaN when beta = 0), exactly 1 for the best one
/// (exp(beta * 0), no call), exp(beta (u - umax)) otherwise. Returns their sum, added in order.
inline double logit_weights4(const double* u, double umax, double beta, double* w) noexcept {
#if PIRACY_EXP4_X86
  if (fma_path()) return logit_weights4_fma(u[0], u[1], u[2], u[3], umax, beta, w);
#endif
  double sum = 0;
  for (int k = 0; k < 4; ++k)
    sum += (w[k] = u[k] == -HUGE_VAL ? 0.0 : u[k] == umax ? 1.0 : std::exp(beta * (u[k] - umax)));
  return sum;
}

}  // namespace piracy::exp4
