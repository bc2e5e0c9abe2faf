#include "economics/market.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <new>
#include <string>

#include "engine/error.hpp"
#include "engine/samplers.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

namespace piracy::economics {

namespace {

constexpr const char* kChannelNames[kChannels] = {"theatrical", "disc", "digital", "subscription"};

// Tolerance on sums that must not exceed 1 (shares, substitution columns): they are typed in
// YAML as decimals such as 0.1 + 0.2 + 0.7, which do not add up to exactly 1 in binary.
constexpr double kSumTolerance = 1e-9;

[[nodiscard]] bool is_unit(double x) { return std::isfinite(x) && x >= 0.0 && x <= 1.0; }

void require(bool ok, const std::string& message) {
  if (!ok) throw ModelError("market parameters: " + message);
}

}  // namespace

const char* channel_name(int channel) noexcept {
  return (channel >= 0 && channel < kChannels) ? kChannelNames[channel] : "unknown";
}

MarketParams default_market_params() {
  // Values and sources: see the comment block at the top of market.hpp.
  const double ln2 = std::log(2.0);
  MarketParams p;
  p.price_usd = {9.16, 20.0, 10.0, 1.0};
  p.share = {0.40, 0.10, 0.20, 0.30};
  p.decay_per_day = {ln2 / 7.0, ln2 / 21.0, ln2 / 42.0, ln2 / 180.0};
  p.displacement = {0.40, 0.40, 0.40, 0.20};
  p.pre_release_penalty = {0.191, 0.191, 0.191, 0.0};
  p.piracy_propensity = 0.50;
  p.bass_p = 0.05;
  p.bass_q = 0.40;
  p.substitution = Eigen::Matrix4d::Zero();
  p.life_days = 1095;
  return p;
}

void validate(const MarketParams& p) {
  double share_sum = 0.0;
  for (int c = 0; c < kChannels; ++c) {
    const char* name = kChannelNames[c];
    require(std::isfinite(p.price_usd[c]) && p.price_usd[c] >= 0.0,
            fmt::format("price_usd[{}] ({}) = {}: must be a finite number >= 0", c, name, p.price_usd[c]));
    require(is_unit(p.share[c]),
            fmt::format("share[{}] ({}) = {}: must be in [0, 1]", c, name, p.share[c]));
    require(std::isfinite(p.decay_per_day[c]) && p.decay_per_day[c] > 0.0,
            fmt::format("decay_per_day[{}] ({}) = {}: must be a finite rate > 0 (e.g. ln2 / half-life in days)",
                        c, name, p.decay_per_day[c]));
    require(is_unit(p.displacement[c]),
            fmt::format("displacement[{}] ({}) = {}: must be in [0, 1] (legal views lost per illegal view)", c,
                        name, p.displacement[c]));
    require(is_unit(p.pre_release_penalty[c]),
            fmt::format("pre_release_penalty[{}] ({}) = {}: must be in [0, 1]", c, name,
                        p.pre_release_penalty[c]));
    share_sum += p.share[c];
  }
  require(share_sum <= 1.0 + kSumTolerance,
          fmt::format("share sums to {}: the channel shares of a title's lifetime audience must sum to at most 1",
                      share_sum));
  require(is_unit(p.piracy_propensity),
          fmt::format("piracy_propensity = {}: must be in [0, 1]", p.piracy_propensity));
  require(std::isfinite(p.bass_p) && p.bass_p > 0.0 && p.bass_p <= 1.0,
          fmt::format("bass_p = {}: must be in (0, 1] (availability on the leak day)", p.bass_p));
  require(std::isfinite(p.bass_q) && p.bass_q >= 0.0,
          fmt::format("bass_q = {}: must be a finite number >= 0", p.bass_q));
  for (int j = 0; j < kChannels; ++j) {
    double column = 0.0;
    for (int k = 0; k < kChannels; ++k) {
      const double s = p.substitution(k, j);
      require(std::isfinite(s) && s >= 0.0,
              fmt::format("substitution({}, {}) = {}: shares of displaced demand must be finite and >= 0", k, j, s));
      column += s;
    }
    require(column <= 1.0 + kSumTolerance,
            fmt::format("substitution column {} ({}) sums to {}: the shares of demand displaced from a channel "
                        "that are recovered in other channels must sum to at most 1",
                        j, kChannelNames[j], column));
  }
  require(p.life_days >= 1, fmt::format("life_days = {}: must be >= 1", p.life_days));
}

double bass_availability(double p, double q, double popularity, std::int64_t days_since_leak) {
  if (days_since_leak < 0) return 0.0;
  // Same arithmetic, in the same order, as the batched update in Market::advance_one_day, so the
  // catch-up of a title entering the market matches a title that was there all along. Starting
  // from A = 0 the day before the leak, the first update gives A = p on the leak day.
  const double q_eff = q * popularity;
  double a = 0.0;
  for (std::int64_t n = 0; n <= days_since_leak; ++n) {
    a = std::min(std::max(a + (p + q_eff * a) * (1.0 - a), 0.0), 1.0);
    if (a == 1.0) break;  // a fixed point: 1 + (p + q) * 0 = 1
  }
  return a;
}

#if PIRACY_LOG4_X86
namespace {
// (GCC 12's false -Wuninitialized on AVX-512 intrinsics: see engine/exp4.hpp.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
/// A barrier to contraction: the scalar code (x86-64 baseline) never fuses a product with the
/// addition after it, so neither may these vectors.
__attribute__((target("avx512f"), always_inline)) inline __m512d opaque8(__m512d v) noexcept {
  asm("" : "+v"(v));
  return v;
}
/// bass_availability_many() for m <= 32 titles, four vectors of eight
/// side by side: one vector's day is a chain of ~7 dependent operations, four hide each other's
/// latency. Each lane is bass_availability()'s update, operation for operation: std::max(x, 0.0)
/// is (0 > x) ? 0 : x, which vmaxpd(0, x) computes (NaN and -0 included: the second operand
/// wins), and std::min(y, 1.0) is vminpd(1, y).
__attribute__((target("avx512f,avx2,fma"))) void bass32_avx512(double p, double q, const double* popularity,
                                                              const std::int64_t* days_since_leak, double* out,
                                                              std::size_t m) noexcept {
  constexpr int kVectors = 4;
  alignas(64) double q_eff[kVectors * 8] = {};
  alignas(64) std::int64_t days[kVectors * 8];
  std::int64_t longest = -1;
  for (std::size_t l = 0; l < kVectors * 8; ++l) {
    days[l] = l < m ? days_since_leak[l] : -1;  // (lanes past m: never updated)
    if (l < m) q_eff[l] = q * popularity[l];
    longest = std::max(longest, days[l]);
  }
  const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0), pv = _mm512_set1_pd(p);
  __m512d a[kVectors], qe[kVectors];
  __m512i dv[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    a[v] = zero;
    qe[v] = _mm512_load_pd(q_eff + 8 * v);
    dv[v] = _mm512_load_si512(days + 8 * v);
  }
  for (std::int64_t d = 0; d <= longest; ++d) {
    const __m512i dd = _mm512_set1_epi64(d);
    __mmask8 any = 0;
    for (int v = 0; v < kVectors; ++v) {
      // a + (p + q_eff a)(1 - a), clamped to [0, 1]
      const __m512d rate = _mm512_add_pd(pv, opaque8(_mm512_mul_pd(qe[v], a[v])));
      const __m512d step = opaque8(_mm512_mul_pd(rate, _mm512_sub_pd(one, a[v])));
      // (the zero-masking forms over all eight lanes: the plain ones pass GCC 12 an undefined
      // source operand, which -Wmaybe-uninitialized reports)
      const __m512d next = _mm512_maskz_min_pd(0xFF, one, _mm512_maskz_max_pd(0xFF, zero, _mm512_add_pd(a[v], step)));
      // while d <= its days and until it reaches 1 (the scalar loop's exits)
      const __mmask8 moves = _mm512_cmp_epi64_mask(dd, dv[v], _MM_CMPINT_LE) & _mm512_cmp_pd_mask(a[v], one, _CMP_NEQ_UQ);
      a[v] = _mm512_mask_blend_pd(moves, a[v], next);
      any |= moves;
    }
    if (any == 0) break;
  }
  alignas(64) double res[kVectors * 8];
  for (int v = 0; v < kVectors; ++v) _mm512_store_pd(res + 8 * v, a[v]);
  for (std::size_t l = 0; l < m; ++l) out[l] = res[l];
}
#pragma GCC diagnostic pop
}  // namespace
#endif

void bass_availability_many(double p, double q, std::span<const double> popularity,
                            std::span<const std::int64_t> days_since_leak, std::span<double> out) {
  const std::size_t n = out.size();
  if (popularity.size() != n || days_since_leak.size() != n)
    throw ModelError("bass_availability_many: spans of different sizes");
#if PIRACY_LOG4_X86
  // 32 titles at a time on 512-bit vectors where the model's 8-lane kernels run
  // (sample::avx512_kernels(): one rule for all of them).
  if (sample::avx512_kernels()) {
    for (std::size_t j0 = 0; j0 < n; j0 += 32)
      bass32_avx512(p, q, popularity.data() + j0, days_since_leak.data() + j0, out.data() + j0, std::min<std::size_t>(32, n - j0));
    return;
  }
#endif
  bass_availability_many_portable(p, q, popularity, days_since_leak, out);
}

void bass_availability_many_portable(double p, double q, std::span<const double> popularity,
                                     std::span<const std::int64_t> days_since_leak, std::span<double> out) {
  const std::size_t n = out.size();
  if (popularity.size() != n || days_since_leak.size() != n)
    throw ModelError("bass_availability_many: spans of different sizes");
  // Eight titles at a time, in the given order (titles of similar days side by side waste the
  // fewest lane-days). Each lane is bass_availability()'s loop: the same update, in the same
  // order, while d <= its days and until it reaches the fixed point 1 (its break).
  constexpr std::size_t kLanes = 8;
  const auto lanes = [&](std::size_t j0) {
    const std::size_t m = std::min(kLanes, n - j0);
    std::array<double, kLanes> a{}, q_eff{};
    std::array<std::int64_t, kLanes> days{};
    days.fill(-1);  // (lanes past m: never updated)
    std::int64_t longest = -1;
    for (std::size_t l = 0; l < m; ++l) {
      q_eff[l] = q * popularity[j0 + l];
      days[l] = days_since_leak[j0 + l];
      longest = std::max(longest, days[l]);
    }
    for (std::int64_t d = 0; d <= longest; ++d) {
      bool any = false;
      for (std::size_t l = 0; l < kLanes; ++l) {
        const double next = std::min(std::max(a[l] + (p + q_eff[l] * a[l]) * (1.0 - a[l]), 0.0), 1.0);
        const bool moves = d <= days[l] && a[l] != 1.0;
        a[l] = moves ? next : a[l];
        any |= moves;
      }
      if (!any) break;  // every lane at its end or at 1
    }
    for (std::size_t l = 0; l < m; ++l) out[j0 + l] = a[l];
  };
  for (std::size_t j0 = 0; j0 < n; j0 += kLanes) lanes(j0);
}

Market::Market(MarketParams params) : params_(std::move(params)) {
  validate(params_);
  for (int c = 0; c < kChannels; ++c) {
    const double lambda = params_.decay_per_day[c];
    // Demand of day n after the window opens is a_i share_c (e^{-lambda n} - e^{-lambda (n+1)}),
    // the integral over that day of the exponential density lambda e^{-lambda t}: the daily
    // amounts then sum to exactly a_i share_c over an unbounded life, as "a_i = lifetime
    // audience" requires. (The density sampled at whole days, lambda e^{-lambda n}, would sum
    // to a_i share_c lambda / (1 - e^{-lambda}), 5% too much for lambda = 0.1.)
    retention_[c] = std::exp(-lambda);
    day_share_[c] = params_.share[c] * -std::expm1(-lambda);
  }
  for (int k = 0; k < kChannels; ++k) recovers_[k] = !params_.substitution.row(k).isZero(0.0);
  has_substitution_ = !params_.substitution.isZero(0.0);
  ledger_start_.push_back(0);
  group_day_.push_back(0.0);  // slot 0 of the daily scatter: unleaked titles
  slot_rows_.push_back(0);
  hot_values_.resize(static_cast<std::size_t>(kBlock));
  other_values_.resize(static_cast<std::size_t>(kBlock));
  other_slots_.resize(static_cast<std::size_t>(kBlock));
}

const Market::TitleRecord& Market::record(std::int32_t title) const {
  if (title < 0 || static_cast<std::size_t>(title) >= titles_.size()) {
    throw ModelError(fmt::format("market: unknown title id {} ({} titles registered)", title, titles_.size()));
  }
  return titles_[static_cast<std::size_t>(title)];
}

std::int32_t Market::add_title(const MarketTitle& title) {
  if (titles_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max() / kChannels)) {
    throw ModelError("market: too many titles (ids are 32-bit, events pack id and channel)");
  }
  const auto id = static_cast<std::int32_t>(titles_.size());
  if (!std::isfinite(title.audience) || title.audience < 0.0) {
    throw ModelError(fmt::format("market: title {} audience = {}: must be a finite number >= 0", id, title.audience));
  }
  if (!std::isfinite(title.popularity) || title.popularity < 0.0) {
    throw ModelError(
        fmt::format("market: title {} popularity = {}: must be a finite number >= 0", id, title.popularity));
  }
  TitleRecord r;
  r.title = title;
  for (const std::int32_t s : title.window_start) {
    if (s >= 0) r.first_window = std::min(r.first_window, s);
  }
  if (r.first_window == kNever) {
    r.state = TitleState::Done;  // no legal window at all: no demand, nothing to lose
  } else {
    pending_.push({r.first_window, id});
  }
  grow_for_append(titles_);  // (eight times the room at once: engine/large_pages.hpp)
  titles_.push_back(r);
  return id;
}

std::int32_t Market::group_slot(std::int32_t group) {
  const auto [it, inserted] = group_slots_.try_emplace(group, static_cast<std::int32_t>(group_ids_.size()));
  if (inserted) {
    group_ids_.push_back(group);
    group_total_.push_back(0.0);
    group_day_.resize(group_ids_.size() + 1, 0.0);
    slot_rows_.resize(group_ids_.size() + 1, 0);
  }
  return it->second;
}

void Market::record_leak(std::int32_t title, std::int32_t day, const LeakSource& source) {
  static_cast<void>(record(title));  // range check
  TitleRecord& r = titles_[static_cast<std::size_t>(title)];
  if (r.leak_day <= day) return;  // only the first public copy counts
  // A title in the market has had its days up to last_day_ computed without this leak; a title
  // not yet in the market has its availability caught up when it enters, so a past leak is fine.
  if (r.state == TitleState::Active && day <= last_day_) {
    throw ModelError(fmt::format(
        "market: leak of title {} recorded for day {}, but the market has already simulated day {} for it: "
        "record leaks before calling step() for their day",
        title, day, last_day_));
  }
  // Only a never-leaked settled title can get here (a leaked one has leak_day <= last_day_):
  // it becomes a row again, to follow its availability from the leak on.
  if (r.settled) unsettle(title);
  r.leak_day = day;
  r.source = source;
  r.group_slot = group_slot(source.group);
  if (r.state == TitleState::Done) return;
  if (!started_ || day > last_day_) leaks_.add(day, title);  // else: not in the market, caught up on entry
  if (r.active_row >= 0) {
    const Eigen::Index row = r.active_row;
    set_flag(row, kP2P, source.p2p);
    set_flag(row, kPreRelease, source.pre_release);
    --slot_rows_[static_cast<std::size_t>(row_group_[static_cast<std::size_t>(row)])];
    row_group_[static_cast<std::size_t>(row)] = r.group_slot + 1;
    ++slot_rows_[static_cast<std::size_t>(r.group_slot + 1)];
  }
}

bool Market::leaked(std::int32_t title) const { return record(title).leak_day != kNever; }

double Market::availability(std::int32_t title) const {
  const TitleRecord& r = record(title);
  if (r.active_row >= 0) return avail_(r.active_row);
  if (!started_ || r.leak_day == kNever || r.leak_day > last_day_) return 0.0;
  return bass_availability(params_.bass_p, params_.bass_q, r.title.popularity,
                           static_cast<std::int64_t>(last_day_) - r.leak_day);
}

double Market::pre_release_factor(int channel, double availability_at_open) const {
  // Ma, Montgomery, Singh & Smith (2014): a leak before the window opens costs pre_c of the
  // window's demand at full availability, weighted by the availability reached by the opening.
  return std::clamp(1.0 - params_.pre_release_penalty[static_cast<std::size_t>(channel)] * availability_at_open,
                    0.0, 1.0);
}

void Market::reserve_rows(Eigen::Index rows) {
  if (rows <= audience_.size()) return;
  // A whole number of 64 rows: a column of the per-channel matrices then starts at the same
  // alignment as the first, and Eigen's vectorised sums over a column's rows take their packets
  // at the same places (a capacity of an odd number of rows changed the last bits of the day's
  // revenue sums: found when admit_titles() first reserved room for the day's titles at once).
  const Eigen::Index cap = (std::max<Eigen::Index>({rows, 2 * audience_.size(), 64}) + 63) / 64 * 64;
  // The double arrays ask for huge pages before their new memory is first written
  // (engine/large_pages.hpp: a 4 KiB page fault traps to the hypervisor here). A vector grows by
  // realloc, which leaves its new part unwritten; a matrix is copied into a new one, advised before
  // the copy. The values are those conservativeResize() gives.
  const auto grow_vector = [cap](Eigen::ArrayXd& a) {
    a.conservativeResize(cap);
    advise_huge_pages(a.data(), static_cast<std::size_t>(cap) * sizeof(double));
  };
  const auto grow_matrix = [cap](Eigen::ArrayXXd& m) {
    Eigen::ArrayXXd next(cap, kChannels);
    advise_huge_pages(next.data(), static_cast<std::size_t>(next.size()) * sizeof(double));
    // (the old rows, every one of them, as conservativeResize() copies them; the new ones are left
    // as they come from the allocator)
    if (m.rows() > 0) next.topRows(m.rows()) = m;
    m.swap(next);
  };
  grow_vector(audience_);
  grow_vector(q_eff_);
  grow_vector(avail_);
  flags_.resize(static_cast<std::size_t>(cap));
  // E is read only by the substitution term: without substitution it is not kept (32 bytes a
  // title: docs/PERFORMANCE.md 5.4).
  if (has_substitution_) grow_matrix(exists_);
  grow_matrix(demand_);
  grow_matrix(pre_factor_);
  row_title_.resize(static_cast<std::size_t>(cap));
  row_group_.resize(static_cast<std::size_t>(cap));
  settle_.resize(static_cast<std::size_t>(cap));
  settled_day_.resize(static_cast<std::size_t>(cap));
}

void Market::plan_capacity(std::int64_t titles, std::int64_t first_step_rows) {
  // (A plan is a hint: capped, and a reservation the system refuses is left out; the market then
  // grows as titles come, as without one.)
  constexpr std::int64_t kMaxTitles = std::int64_t{1} << 26, kMaxRows = std::int64_t{1} << 24;
  titles = std::clamp<std::int64_t>(titles, 0, kMaxTitles);
  if (titles > static_cast<std::int64_t>(titles_.capacity())) {
    try {
      titles_.reserve(static_cast<std::size_t>(titles));
    } catch (const std::bad_alloc&) {
    }
  }
  planned_rows_ = std::max<Eigen::Index>(planned_rows_, static_cast<Eigen::Index>(std::clamp<std::int64_t>(first_step_rows, 0, kMaxRows)));
}

void Market::prepare_first_step(std::int32_t days_left) {
  if (started_) return;
  const Eigen::Index target = std::max(static_cast<Eigen::Index>(pending_.size()) + 1, planned_rows_);
  const Eigen::Index before = audience_.size();
  reserve_rows(target);
  const Eigen::Index cap = audience_.size();
  const Eigen::Index calls = std::max<Eigen::Index>(days_left, 1);
  // What is written per call: the part not yet written divided by the calls left, at least 1,024.
  const auto part_of = [calls](Eigen::Index left) { return std::min(left, std::max<Eigen::Index>(1024, (left + calls - 1) / calls)); };
  // The scratch of admit_titles(), which the first step fills for every entering title: sized
  // ahead here a part at a time (their first touch was ~12 ms of the first reported day's ~50:
  // docs/PERFORMANCE.md 27). Their sizes are left as written: admit_titles() clears or rewrites
  // each before use. Capacity doubles at least, so that a growing count is not reallocated daily.
  const auto ahead = [&](auto& v) {
    const auto n = static_cast<std::size_t>(target);
    if (v.capacity() < n) v.reserve(std::max(n, 2 * v.capacity()));
    if (v.size() < n) v.resize(v.size() + static_cast<std::size_t>(part_of(static_cast<Eigen::Index>(n - v.size()))));
  };
  ahead(entering_);
  ahead(entering_order_);
  ahead(entering_caught_up_);
  ahead(entering_popularity_);
  ahead(entering_days_);
  ahead(entering_out_);
  // A growth kept the old rows (copied, or moved by realloc) and left the new ones unwritten.
  if (cap != before) written_rows_ = std::min(written_rows_, before);
  if (written_rows_ >= cap) return;
  const Eigen::Index part = part_of(cap - written_rows_);
  const Eigen::Index r0 = written_rows_;
  // (the std::vector arrays are value-initialised by reserve_rows(); Eigen leaves its own as
  // they come from the allocator)
  audience_.segment(r0, part).setZero();
  q_eff_.segment(r0, part).setZero();
  avail_.segment(r0, part).setZero();
  if (has_substitution_) exists_.middleRows(r0, part).setZero();
  demand_.middleRows(r0, part).setZero();
  pre_factor_.middleRows(r0, part).setZero();
  written_rows_ = r0 + part;
}

void Market::admit(std::int32_t id, std::int32_t day, std::optional<double> caught_up) {
  TitleRecord& r = titles_[static_cast<std::size_t>(id)];
  const std::int64_t exit_day = static_cast<std::int64_t>(r.first_window) + params_.life_days;
  if (exit_day <= day) {  // its whole life passed before the market reached it
    r.state = TitleState::Done;
    return;
  }
  reserve_rows(rows() + 1);
  if (n_settled_ > 0) move_row(n_active_, rows());  // the first settled row to the end of the settled part
  const Eigen::Index row = n_active_++;
  const bool has_leak = r.leak_day != kNever;
  audience_(row) = r.title.audience;
  q_eff_(row) = params_.bass_q * r.title.popularity;
  flags_[static_cast<std::size_t>(row)] = 0;
  set_flag(row, kP2P, has_leak && r.source.p2p);
  set_flag(row, kPreRelease, has_leak && r.source.pre_release);
  row_title_[static_cast<std::size_t>(row)] = id;
  row_group_[static_cast<std::size_t>(row)] = r.group_slot + 1;
  ++slot_rows_[static_cast<std::size_t>(r.group_slot + 1)];

  // The row holds availability as of day - 1 and demand as of `day` (advance_one_day updates A
  // first, then uses D and decays it for tomorrow); the leak / opening events of `day` itself
  // are handled there. Normally (entry on the first window day, leak later) this is all zeros;
  // the catch-up matters for titles that leaked before their first window (pre-release leaks)
  // or entered after the market started.
  const std::int64_t prev = static_cast<std::int64_t>(day) - 1;
  const bool leak_started = has_leak && r.leak_day <= prev;
  set_flag(row, kLeakStarted, leak_started);
  avail_(row) = !leak_started ? 0.0
                 : caught_up ? *caught_up
                             : bass_availability(params_.bass_p, params_.bass_q, r.title.popularity, prev - r.leak_day);
  for (int c = 0; c < kChannels; ++c) {
    const std::int32_t s = r.title.window_start[static_cast<std::size_t>(c)];
    if (has_substitution_) exists_(row, c) = s >= 0 ? 1.0 : 0.0;
    demand_(row, c) = 0.0;
    pre_factor_(row, c) = 1.0;
    if (s < 0) continue;
    if (s <= prev) {  // opened before the title entered: catch up
      demand_(row, c) = r.title.audience * day_share_[c] * std::pow(retention_[c], static_cast<double>(day - s));
      if (has_leak && r.leak_day < s) {
        pre_factor_(row, c) = pre_release_factor(
            c, bass_availability(params_.bass_p, params_.bass_q, r.title.popularity,
                                 static_cast<std::int64_t>(s) - r.leak_day));
      }
    } else if (s < exit_day) {
      openings_.add(s, id * kChannels + c);
    }
  }
  r.active_row = static_cast<std::int32_t>(row);
  r.state = TitleState::Active;
  if (exit_day < kNever) exits_.add(static_cast<std::int32_t>(exit_day), id);
}

void Market::remove_row(Eigen::Index row) {
  const Eigen::Index last = n_active_ - 1;
  --slot_rows_[static_cast<std::size_t>(row_group_[static_cast<std::size_t>(row)])];
  titles_[static_cast<std::size_t>(row_title_[static_cast<std::size_t>(row)])].active_row = -1;
  // Keep both parts compact: the last active row fills the hole, the last settled row the last
  // active row's place.
  if (row != last) move_row(last, row);
  if (n_settled_ > 0) move_row(rows() - 1, last);
  --n_active_;
}

void Market::retire_titles(std::int32_t day) {
  for (const std::int32_t id : exits_.take(day)) {
    TitleRecord& r = titles_[static_cast<std::size_t>(id)];
    if (r.state == TitleState::Active) {
      if (r.settled) retire_settled(r, day);
      else remove_row(r.active_row);
      r.state = TitleState::Done;
    }
  }
}

void Market::admit_titles(std::int32_t day) {
  // The day's entering titles, in the heap's order; then the availability of those that leaked
  // before today, caught up together (bass_availability_many(): the same values); then each
  // admitted in that order. The catch-up reads only the title's own record, which no admission
  // changes.
  auto& entering = entering_;
  entering.clear();
  while (!pending_.empty() && pending_.top().first <= day) {
    entering.push_back(pending_.top().second);
    pending_.pop();
  }
  if (entering.empty()) return;
  // The titles to catch up, the longest first (see bass_availability_many()), by their place in
  // `entering`.
  const std::int64_t prev = static_cast<std::int64_t>(day) - 1;
  auto& order = entering_order_;
  order.clear();
  auto& caught_up = entering_caught_up_;
  caught_up.assign(entering.size(), std::nullopt);  // (none to catch up)
  for (std::size_t j = 0; j < entering.size(); ++j) {
    const TitleRecord& r = titles_[static_cast<std::size_t>(entering[j])];
    if (r.leak_day != kNever && r.leak_day <= prev) order.emplace_back(prev - r.leak_day, static_cast<std::uint32_t>(j));
  }
  if (!order.empty()) {
    std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
    auto& popularity = entering_popularity_;
    auto& days = entering_days_;
    auto& out = entering_out_;
    popularity.resize(order.size());
    days.resize(order.size());
    out.resize(order.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      days[k] = order[k].first;
      popularity[k] = titles_[static_cast<std::size_t>(entering[order[k].second])].title.popularity;
    }
    bass_availability_many(params_.bass_p, params_.bass_q, popularity, days, out);
    for (std::size_t k = 0; k < order.size(); ++k) caught_up[order[k].second] = out[k];
  }
  // (Room for every entering title at once: on the first reported day ~105,000 titles enter and
  // the rows doubled ten times, each a copy of every array into fresh pages.)
  reserve_rows(rows() + static_cast<Eigen::Index>(entering.size()));
  for (std::size_t j = 0; j < entering.size(); ++j) admit(entering[j], day, caught_up[j]);
}

void Market::start_leaks(std::int32_t day) {
  // From its leak day on, a title's availability follows the Bass recursion (p_eff = p); before
  // it, p_eff = 0 keeps A at exactly 0 under the same update.
  for (const std::int32_t id : leaks_.take(day)) {
    const TitleRecord& r = titles_[static_cast<std::size_t>(id)];
    if (r.leak_day != day || r.active_row < 0) continue;  // replaced, or not in the market (caught up on entry)
    set_flag(r.active_row, kLeakStarted, true);
  }
}

void Market::open_windows(std::int32_t day) {
  for (const std::int32_t code : openings_.take(day)) {
    const std::int32_t id = code / kChannels;
    const int c = code % kChannels;
    const TitleRecord& r = titles_[static_cast<std::size_t>(id)];
    if (r.settled) {
      settled_open(titles_[static_cast<std::size_t>(id)], c, day);
      continue;
    }
    if (r.active_row < 0) continue;
    const Eigen::Index row = r.active_row;
    demand_(row, c) = r.title.audience * day_share_[c];
    // Fixed for the rest of the window: pre-release leaks are judged by the availability reached
    // on the opening day, A_i(s_ic) [L_i < s_ic].
    pre_factor_(row, c) = r.leak_day < day ? pre_release_factor(c, next_availability(row)) : 1.0;
  }
}

DayTotals Market::step(std::int32_t day) {
  if (started_ && day <= last_day_) {
    throw ModelError(fmt::format("market: step({}) after day {}: days must be strictly increasing", day, last_day_));
  }
  DayTotals total;
  const std::int32_t first = started_ ? last_day_ + 1 : day;
  for (std::int32_t t = first; t <= day; ++t) {
    const DayTotals d = advance_one_day(t);
    total.legal_revenue_usd += d.legal_revenue_usd;
    total.counterfactual_revenue_usd += d.counterfactual_revenue_usd;
    total.loss_usd += d.loss_usd;
    for (int c = 0; c < kChannels; ++c) total.loss_by_channel_usd[c] += d.loss_by_channel_usd[c];
  }
  total.active_titles = active_titles();
  return total;
}

DayTotals Market::advance_one_day(std::int32_t t) {
  retire_titles(t);
  admit_titles(t);
  start_leaks(t);
  started_ = true;
  last_day_ = t;

  DayTotals out;
  const Eigen::Index n = n_active_;
  out.active_titles = active_titles();
  const MarketParams& P = params_;

  // Windows opening today: D_ic(s_ic) and the pre-release factor, which needs A_i(s_ic) (today's
  // availability, computed for those rows by next_availability(); the block pass below applies
  // the same update to every row).
  open_windows(t);
  if (n == 0 && n_settled_ == 0) return out;

  double counterfactual = 0.0;
  double p2p = 0.0;
  double pre_release = 0.0;
  std::array<double, kChannels> lost_units{};  // sum over titles of (D - D'')_c

  // One pass over the active set in blocks of kBlock rows, so that the scratch arrays and the
  // block's state stay in cache between the column-wise expressions (the whole state of 70,000
  // titles is several MB). Blocks are independent and run in parallel; their sums are added
  // below in block order, so the result does not depend on the number of threads.
  const Eigen::Index blocks = (n + kBlock - 1) / kBlock;
  if (static_cast<Eigen::Index>(block_results_.size()) < blocks) block_results_.resize(static_cast<std::size_t>(blocks));
  if (title_loss_.size() < n) title_loss_.resize(std::max<Eigen::Index>(n, 2 * title_loss_.size()));
  // A pipeline of tokens of kTokenBlocks blocks: the blocks are computed in parallel, and the
  // in-order stage adds each token's sums and scatters its per-group losses while later tokens
  // are still being computed (the scatter is sequential: with a parallel_for followed by the
  // scatter, the second thread idled through it). In-order means the same additions in the
  // same order as a sequential pass, whatever the number of threads.
  const Eigen::Index tokens = (blocks + kTokenBlocks - 1) / kTokenBlocks;
  to_settle_.clear();
  if (n > 0) {
    // The leaked titles' slot with the most rows, if it holds at least a quarter of the rows (in
    // the default run the P2P groups' anonymous slot holds ~60%): scatter_group_losses() adds its
    // losses in a register. Any choice gives the same bytes; this one only changes the speed.
    std::int32_t hot = -1;
    std::int64_t most = 0;
    for (std::size_t g = 1; g < slot_rows_.size(); ++g) {
      if (slot_rows_[g] > most) {
        most = slot_rows_[g];
        hot = static_cast<std::int32_t>(g);
      }
    }
    if (4 * most < n) hot = -1;
#ifdef PIRACY_SEATBELTS
    {
      std::int64_t rows = 0;
      for (const std::int64_t r : slot_rows_) rows += r;
      if (rows != n) throw ModelError(fmt::format("market seatbelt: day {}: the slots count {} rows, the market holds {}", t, rows, n));
    }
#endif
    Eigen::Index next_token = 0;
    const auto live_tokens = static_cast<std::size_t>(2 * tbb::this_task_arena::max_concurrency());
    tbb::parallel_pipeline(
        live_tokens,
        tbb::make_filter<void, Eigen::Index>(tbb::filter_mode::serial_in_order,
                                             [&](tbb::flow_control& fc) -> Eigen::Index {
                                               if (next_token >= tokens) {
                                                 fc.stop();
                                                 return 0;
                                               }
                                               return next_token++;
                                             }) &
            tbb::make_filter<Eigen::Index, Eigen::Index>(
                tbb::filter_mode::parallel,
                [&](Eigen::Index k) {
                  BlockScratch& s = scratch_.local();
                  for (Eigen::Index b = k * kTokenBlocks; b < std::min(blocks, (k + 1) * kTokenBlocks); ++b) {
                    const Eigen::Index b0 = b * kBlock;
                    block_results_[static_cast<std::size_t>(b)] = compute_block(t, b0, std::min(kBlock, n - b0), s, true);
                  }
                  return k;
                }) &
            tbb::make_filter<Eigen::Index, void>(tbb::filter_mode::serial_in_order, [&](Eigen::Index k) {
              for (Eigen::Index b = k * kTokenBlocks; b < std::min(blocks, (k + 1) * kTokenBlocks); ++b) {
                const BlockResult& br = block_results_[static_cast<std::size_t>(b)];
                const Eigen::Index b0 = b * kBlock;
                const Eigen::Index m = std::min(kBlock, n - b0);
                if (!br.finite) {
                  // Recompute the block (its demand was left undecayed) to name the culprit: the
                  // first non-finite block in row order, whatever thread found it.
                  BlockScratch s;
                  (void)compute_block(t, b0, m, s, false);  // availability is already today's
                  throw_non_finite(t, b0, m, s);
                }
                if (!br.seatbelt.empty()) throw ModelError(br.seatbelt);
                counterfactual += br.counterfactual;
                p2p += br.p2p;
                pre_release += br.pre;
                for (int c = 0; c < kChannels; ++c) lost_units[c] += br.lost[c];
                // Per-group attribution, sequential and in row order (docs/PERFORMANCE.md 9.1, 13).
                scatter_group_losses(b0, m, hot);
                // Rows that settle after today (docs/PERFORMANCE.md 15): availability unchanged, and
                // a leak that has started or none at all (a title whose leak is still to come must
                // stay a row).
                for (Eigen::Index i = b0; i < b0 + m; ++i) {
                  if (settle_[static_cast<std::size_t>(i)] == 0) continue;
                  if ((flags_[static_cast<std::size_t>(i)] & kLeakStarted) != 0 ||
                      titles_[static_cast<std::size_t>(row_title_[static_cast<std::size_t>(i)])].leak_day == kNever)
                    to_settle_.push_back(static_cast<std::int32_t>(i));
                }
              }
            }));
  }

  // The settled titles' day t, after the rows: their sums hold day t's values (docs/PERFORMANCE.md 15).
  if (n_settled_ > 0) {
    for (int j = 0; j < kChannels; ++j) counterfactual += P.price_usd[j] * agg_demand_[j];
    for (int k = 0; k < kChannels; ++k) {
      double units = 0.0;
      for (int j = 0; j < kChannels; ++j) units += agg_units_[k][j];
      lost_units[k] += units;
    }
    double check = counterfactual + lost_units[0] + lost_units[1] + lost_units[2] + lost_units[3];
    for (auto& key : keys_) {
      if (key.titles == 0) continue;
      const double v = key.loss[0] + key.loss[1] + key.loss[2] + key.loss[3];
      group_day_[static_cast<std::size_t>(key.slot)] += v;
      if (key.p2p) p2p += v;
      if (key.pre) pre_release += v;
      check += v;
      for (int j = 0; j < kChannels; ++j) key.loss[j] *= retention_[j];
    }
    if (!std::isfinite(check)) {
      throw NumericalError(fmt::format(
          "market: a sum of revenue or loss over the {} settled titles on day {} is not finite (overflow): check the "
          "titles' audiences and the market prices",
          n_settled_, t));
    }
    // Tomorrow's values: every term of a channel's sums decays by e^{-lambda}.
    for (int j = 0; j < kChannels; ++j) {
      agg_demand_[j] *= retention_[j];
      for (int k = 0; k < kChannels; ++k) agg_units_[k][j] *= retention_[j];
    }
  }
  // Rows found settled move to the settled part (highest row first: settle_row moves the last
  // active row into the row's place, which is then never a row still to settle).
  for (auto it = to_settle_.rbegin(); it != to_settle_.rend(); ++it) settle_row(*it, t);

#ifdef PIRACY_SEATBELTS
  // Invariant: every row (active part, then settled part) is the row of its title, and a settled
  // leaked row has its attribution key.
  for (Eigen::Index i = 0; i < rows(); ++i) {
    const TitleRecord& tr = titles_[static_cast<std::size_t>(row_title_[static_cast<std::size_t>(i)])];
    if (tr.active_row != i || tr.settled != (i >= n_active_) || (tr.settled && key_of_known(i) == -2)) {
      throw ModelError(fmt::format("market seatbelt: day {}: row {} of title {} (its row {}, settled {}) is not where "
                                   "the title says, or has no attribution key; {} active rows",
                                   t, i, row_title_[static_cast<std::size_t>(i)], tr.active_row, tr.settled, n_active_));
    }
  }
#endif
  double loss = 0.0;
  for (int c = 0; c < kChannels; ++c) {
    out.loss_by_channel_usd[c] = P.price_usd[c] * lost_units[c];
    loss += out.loss_by_channel_usd[c];
  }
  out.counterfactual_revenue_usd = counterfactual;
  out.loss_usd = loss;
  out.legal_revenue_usd = counterfactual - loss;

  totals_.total_usd += loss;
  totals_.p2p_usd += p2p;
  totals_.scene_usd += loss - p2p;  // every title is either Scene or P2P (unleaked: loss 0)
  totals_.pre_release_usd += pre_release;
  for (int c = 0; c < kChannels; ++c) totals_.by_channel_usd[c] += out.loss_by_channel_usd[c];

  // Daily ledger of the groups with a loss today (slot order: deterministic).
  bool any = false;
  for (std::size_t g = 0; g < group_total_.size(); ++g) {
    const double v = group_day_[g + 1];
    if (v == 0.0) continue;
    if (!any) {
      ledger_day_.push_back(t);
      any = true;
    }
    group_total_[g] += v;
    ledger_.push_back(LedgerEntry{static_cast<std::int32_t>(g), v});
    group_day_[g + 1] = 0.0;
  }
  group_day_[0] = 0.0;
  if (any) ledger_start_.push_back(ledger_.size());
  return out;
}

void Market::scatter_group_losses(Eigen::Index b0, Eigen::Index m, std::int32_t hot) {
  // Per-group attribution: a scatter-add (one addition per title), which has no dense array
  // form. Each group's losses are added in row order, block after block, so each group's sum is
  // the same bytes whatever the number of threads (and whichever way below is taken).
  // Unleaked rows (slot 0, loss exactly 0) are not added: slot 0 is never read.
  double* acc = group_day_.data();
  const std::int32_t* slot = row_group_.data() + b0;
  const double* tl = title_loss_.data() + b0;
  if (hot <= 0) {
    // No dominant slot: a run of rows with the same slot is summed in a register, in the same
    // order, instead of through memory (a store-to-load chain cost ~9 cycles per title:
    // docs/PERFORMANCE.md 9.1, 9.3).
    for (Eigen::Index i = 0; i < m;) {
      const std::int32_t g = slot[i];
      if (g == 0) {
        ++i;
        continue;
      }
      double run = acc[g];
      do run += tl[i++];
      while (i < m && slot[i] == g);
      acc[g] = run;
    }
    return;
  }
  // One slot holds a quarter of the rows or more (docs/PERFORMANCE.md 13). Through memory, each
  // of its additions waited for the previous one's store, and the branches of the loop above
  // mispredicted on the ~30% of rows whose slot differs from the previous row's. So the rows are
  // first split without a branch, then added: the hot slot's losses in order in a register, the
  // other leaked rows through memory (few, and mostly of different groups: their additions
  // overlap).
  double* hv = hot_values_.data();
  double* ov = other_values_.data();
  std::int32_t* og = other_slots_.data();
  std::size_t nh = 0, no = 0;
  for (Eigen::Index i = 0; i < m; ++i) {
    const std::int32_t g = slot[i];
    const double v = tl[i];
    hv[nh] = v;
    ov[no] = v;
    og[no] = g;
    // Integer arithmetic, not a condition: GCC turned `g != hot && g != 0` into a branch.
    const auto h = static_cast<std::size_t>(g == hot);
    nh += h;
    no += static_cast<std::size_t>(g != 0) ^ h;  // neither hot (h = 1, g != 0) nor unleaked (h = 0, g = 0)
  }
  double run = acc[hot];
  for (std::size_t j = 0; j < nh; ++j) run += hv[j];
  acc[hot] = run;
  for (std::size_t j = 0; j < no; ++j) acc[og[j]] += ov[j];
}

void Market::move_row(Eigen::Index from, Eigen::Index to) {
  const auto f = static_cast<std::size_t>(from);
  const auto t = static_cast<std::size_t>(to);
  audience_(to) = audience_(from);
  q_eff_(to) = q_eff_(from);
  avail_(to) = avail_(from);
  flags_[t] = flags_[f];
  if (has_substitution_) exists_.row(to) = exists_.row(from);
  demand_.row(to) = demand_.row(from);
  pre_factor_.row(to) = pre_factor_.row(from);
  row_title_[t] = row_title_[f];
  row_group_[t] = row_group_[f];
  settled_day_[t] = settled_day_[f];
  titles_[static_cast<std::size_t>(row_title_[t])].active_row = static_cast<std::int32_t>(to);
}

void Market::swap_rows(Eigen::Index a, Eigen::Index b) {
  if (a == b) return;
  reserve_rows(rows() + 1);  // the row after the last one holds a while
  const Eigen::Index spare = rows();
  move_row(a, spare);
  move_row(b, a);
  move_row(spare, b);
}

std::int32_t Market::key_of(Eigen::Index row, bool create) {
  const std::uint8_t f = flags_[static_cast<std::size_t>(row)];
  if ((f & kLeakStarted) == 0) return -1;
  const std::int32_t slot = row_group_[static_cast<std::size_t>(row)];
  const std::int32_t code = slot * 4 + ((f & kP2P) != 0 ? 2 : 0) + ((f & kPreRelease) != 0 ? 1 : 0);
  const auto at = static_cast<std::size_t>(code);
  if (!create) {
    if (at < key_index_.size() && key_index_[at] >= 0) return key_index_[at];
    throw ModelError(fmt::format("market: no attribution key for settled row {} (code {})", row, code));
  }
  if (at >= key_index_.size()) key_index_.resize(std::max(at + 1, 2 * key_index_.size()), -1);
  if (key_index_[at] < 0) {
    key_index_[at] = static_cast<std::int32_t>(keys_.size());
    AggregateKey key;
    key.slot = slot;
    key.p2p = (f & kP2P) != 0;
    key.pre = (f & kPreRelease) != 0;
    keys_.push_back(key);
  }
  return key_index_[at];
}

std::int32_t Market::key_of_known(Eigen::Index row) const {
  const std::uint8_t f = flags_[static_cast<std::size_t>(row)];
  if ((f & kLeakStarted) == 0) return -1;
  const std::int32_t code = row_group_[static_cast<std::size_t>(row)] * 4 + ((f & kP2P) != 0 ? 2 : 0) +
                            ((f & kPreRelease) != 0 ? 1 : 0);
  const auto at = static_cast<std::size_t>(code);
  return at < key_index_.size() && key_index_[at] >= 0 ? key_index_[at] : -2;
}

std::int32_t Market::settled_ref_day(Eigen::Index row, int channel) const {
  // Windows open before the title settled hold D of the day after it settled; one that opened
  // later holds D of its opening day.
  const std::int32_t s = titles_[static_cast<std::size_t>(row_title_[static_cast<std::size_t>(row)])]
                             .title.window_start[static_cast<std::size_t>(channel)];
  return std::max(settled_day_[static_cast<std::size_t>(row)], s);
}

void Market::add_settled(Eigen::Index row, int j, double demand, std::int32_t key) {
  // Per unit of D_ij, the title's net lost units of channel k are u_kj = l_j [k = j] - E_k S(k, j) l_j
  // (the recovered part only in channels that recover and that the title has), and its loss in
  // USD c_j = sum_k price_k u_kj, with l_j = 1 - (1 - kappa d_j A) pre_j, the factor of
  // compute_block (exactly 0 without a leak): the terms compute_block forms row by row,
  // regrouped by D_j. `demand` carries the sign: < 0 takes the title out.
  const MarketParams& P = params_;
  const double lost = 1.0 - (1.0 - P.piracy_propensity * P.displacement[static_cast<std::size_t>(j)] * avail_(row)) *
                                pre_factor_(row, j);
  agg_demand_[static_cast<std::size_t>(j)] += demand;
  double loss_per_unit = 0.0;
  for (int k = 0; k < kChannels; ++k) {
    double u = k == j ? lost : 0.0;
    if (has_substitution_ && recovers_[k] && exists_(row, k) != 0.0) u -= P.substitution(k, j) * lost;
    agg_units_[k][j] += demand * u;
    loss_per_unit += P.price_usd[k] * u;
  }
  if (key >= 0) keys_[static_cast<std::size_t>(key)].loss[j] += demand * loss_per_unit;
}

void Market::settle_row(Eigen::Index row, std::int32_t t) {
  // The row moves to the first place of the settled part: the last active row takes its place.
  --slot_rows_[static_cast<std::size_t>(row_group_[static_cast<std::size_t>(row)])];
  const Eigen::Index at = n_active_ - 1;
  swap_rows(row, at);
  --n_active_;
  ++n_settled_;
  settled_day_[static_cast<std::size_t>(at)] = t + 1;  // compute_block has decayed its demand to tomorrow's
  const std::int32_t key = key_of(at, true);
  if (key >= 0) ++keys_[static_cast<std::size_t>(key)].titles;
  // Windows still to open have D = 0 here and are added by settled_open().
  for (int c = 0; c < kChannels; ++c)
    if (demand_(at, c) != 0.0) add_settled(at, c, demand_(at, c), key);
  titles_[static_cast<std::size_t>(row_title_[static_cast<std::size_t>(at)])].settled = true;
}

void Market::settled_open(TitleRecord& r, int c, std::int32_t day) {
  // A window of a settled title opens: what open_windows() and compute_block would do for the
  // row (the availability is at its fixed point, so A(s_ic) is the settled A).
  const Eigen::Index row = r.active_row;
  demand_(row, c) = r.title.audience * day_share_[c];
  pre_factor_(row, c) = r.leak_day < day ? pre_release_factor(c, avail_(row)) : 1.0;
  add_settled(row, c, demand_(row, c), key_of(row, false));
}

void Market::forget_settled(std::int32_t key) {
  if (key >= 0) {
    AggregateKey& k = keys_[static_cast<std::size_t>(key)];
    if (--k.titles == 0) k.loss = {};  // no rounding residue for a key without titles
  }
  if (--n_settled_ == 0) {  // no rounding residue without titles
    agg_demand_ = {};
    for (auto& row : agg_units_) row = {};
  }
  for (auto& d : agg_demand_) d = std::max(d, 0.0);  // a sum of demands, whatever the rounding
}

void Market::retire_settled(TitleRecord& r, std::int32_t day) {
  const Eigen::Index row = r.active_row;
  const std::int32_t key = key_of(row, false);
  for (int c = 0; c < kChannels; ++c) {
    const double d = demand_(row, c);
    if (d == 0.0) continue;
    add_settled(row, c, -d * std::pow(retention_[c], static_cast<double>(day - settled_ref_day(row, c))), key);
  }
  const Eigen::Index last = rows() - 1;
  forget_settled(key);
  r.active_row = -1;
  r.settled = false;
  if (row != last) move_row(last, row);  // keep the settled part compact
}

void Market::unsettle(std::int32_t id) {
  // A never-leaked settled title that gets a leak: back to an active row holding the state a row
  // would hold after day last_day_: the demand of each open window decayed day by day as
  // compute_block does (so exactly the same bytes); availability 0 and pre-release factors 1 (no
  // leak) are already there; windows still to open stay at 0 (their openings are scheduled).
  TitleRecord& r = titles_[static_cast<std::size_t>(id)];
  const Eigen::Index row = r.active_row;
  // Each channel's products in its own order, the channels' chains side by side: one channel
  // after the other, each product waited for the one before it (the loop was 82% of this
  // function's samples, `perf annotate`; docs/PERFORMANCE.md 27). add_settled() reads no demand,
  // so the calls below, in channel order, are the ones the channel-by-channel loop made.
  std::array<double, kChannels> d{};
  std::array<std::int64_t, kChannels> days{};
  std::int64_t most = 0;
  for (int c = 0; c < kChannels; ++c) {
    const auto k = static_cast<std::size_t>(c);
    d[k] = demand_(row, c);
    if (d[k] == 0.0) continue;
    days[k] = std::max<std::int64_t>(0, static_cast<std::int64_t>(last_day_) - settled_ref_day(row, c) + 1);
    most = std::max(most, days[k]);
  }
  for (std::int64_t n = 0; n < most; ++n)
    for (std::size_t k = 0; k < static_cast<std::size_t>(kChannels); ++k)
      if (n < days[k]) d[k] *= retention_[k];
  for (int c = 0; c < kChannels; ++c) {
    if (demand_(row, c) == 0.0) continue;
    add_settled(row, c, -d[static_cast<std::size_t>(c)], -1);
    demand_(row, c) = d[static_cast<std::size_t>(c)];
  }
  swap_rows(row, n_active_);  // the first settled row: it becomes the last active one
  forget_settled(-1);         // (after the swap, which uses the row after the settled part)
  ++slot_rows_[static_cast<std::size_t>(row_group_[static_cast<std::size_t>(n_active_)])];
  ++n_active_;
  r.settled = false;
}

double Market::next_availability(Eigen::Index row) const {
  // The scalar form of the block update in compute_block: the same operations in the same order.
  const double a = avail_(row);
  const double p_eff = (flags_[static_cast<std::size_t>(row)] & kLeakStarted) != 0 ? params_.bass_p : 0.0;
  return std::min(std::max(a + (p_eff + q_eff_(row) * a) * (1.0 - a), 0.0), 1.0);
}

Market::BlockResult Market::compute_block(std::int32_t t, Eigen::Index b0, Eigen::Index m, BlockScratch& s,
                                          bool update_availability) {
  const MarketParams& P = params_;
  BlockResult out;
  auto A = avail_.segment(b0, m);
  // The row flags as doubles, in the block's scratch (L1): p_eff = bass_p once the leak day has
  // come, else 0; and the 0/1 weights of the P2P and pre-release sums. One byte per title is read
  // from memory instead of three doubles: at 70,000 titles the pass is bound by memory traffic
  // (docs/PERFORMANCE.md 9.1, 9.3). The values are exactly those the doubles held.
  {
    const std::uint8_t* f = flags_.data() + b0;
    static_assert(kLeakStarted == 1 && kP2P == 2 && kPreRelease == 4, "the shifts below");
    // Branch-free (the flags are random from row to row): bass_p * 1.0 and bass_p * 0.0 are
    // exactly bass_p and 0.
    double* pe = s.p_eff.data();
    double* pp = s.p2p.data();
    double* pr = s.pre.data();
    for (Eigen::Index i = 0; i < m; ++i) {
      const unsigned v = f[i];
      pe[i] = P.bass_p * static_cast<double>(v & kLeakStarted);
      pp[i] = static_cast<double>((v >> 1) & 1u);
      pr[i] = static_cast<double>((v >> 2) & 1u);
    }
  }
  // Piracy availability, Bass (1969) diffusion discretised per day:
  //   A_i(t) = clamp(A_i(t-1) + (p + q pop_i A_i(t-1)) (1 - A_i(t-1)), 0, 1) for t >= L_i, else 0,
  // with A_i(L_i - 1) = 0, so A_i(L_i) = p (p_eff = 0 before the leak keeps A at 0). The clamp
  // matters only if p + q pop > 1. Done here, block by block, rather than in a pass of its own
  // over all titles, so that A is read from memory once a day (docs/PERFORMANCE.md 9.1, 9.3).
  if (update_availability) {
    auto a_new = s.a_new.head(m);
    a_new = (A + (s.p_eff.head(m) + q_eff_.segment(b0, m) * A) * (1.0 - A)).max(0.0).min(1.0);
    // A row may settle once its availability no longer changes (docs/PERFORMANCE.md 15; the leak
    // condition is checked in the in-order stage).
    std::uint8_t* st = settle_.data() + b0;
    for (Eigen::Index i = 0; i < m; ++i) st[i] = static_cast<std::uint8_t>(a_new(i) == A(i));
    A = a_new;
  }
  for (int c = 0; c < kChannels; ++c) {
    // Demand lost to piracy, D - D' with
    //   D'_ic = D_ic clamp(1 - kappa d_c A_i(t), 0, 1) clamp(1 - pre_c A_i(s_ic) [L_i < s_ic], 0, 1)
    // kappa d_c A: share of the audience that watches a free copy (kappa) times legal views
    // lost per illegal view (Ecorys 2017); pre_c: Ma, Montgomery, Singh & Smith (2014), -19.1%
    // at full availability for a pre-release leak relative to a post-release one (the second
    // factor is fixed when the window opens: pre_factor_).
    // (kd = kappa d_c and A are in [0, 1], so 1 - kd A needs no clamp; pre_factor_ is clamped
    // when it is set.)
    const double kd = P.piracy_propensity * P.displacement[c];
    s.lost.col(c).head(m) = demand_.col(c).segment(b0, m) * (1.0 - (1.0 - kd * A) * pre_factor_.col(c).segment(b0, m));
  }
  // Substitution: D'' = D' + (L S^T) .* E, with L = D - D' and E_ik = 1 if title i has
  // channel k. Recovered demand is booked on the day it is displaced (a timing approximation:
  // totals over a title's life are unaffected) and only in channels the title has: lost
  // subscription demand of a film without a theatrical release cannot turn into tickets.
  // Net loss in units: D - D''.
  // net[k]: the array holding channel k's D - D'' (s.lost itself where nothing is recovered).
  std::array<const Eigen::ArrayXXd*, kChannels> net{&s.lost, &s.lost, &s.lost, &s.lost};
  if (has_substitution_) {
    const Eigen::Matrix4d& S = P.substitution;
    for (int k = 0; k < kChannels; ++k) {
      if (!recovers_[k]) continue;
      s.net.col(k).head(m) = s.lost.col(k).head(m) -
                             exists_.col(k).segment(b0, m) *
                                 (S(k, 0) * s.lost.col(0).head(m) + S(k, 1) * s.lost.col(1).head(m) +
                                  S(k, 2) * s.lost.col(2).head(m) + S(k, 3) * s.lost.col(3).head(m));
      net[k] = &s.net;
    }
  }
  // Revenue = sum_c price_c D''_ic; counterfactual = sum_c price_c D_ic; loss = their
  // difference, computed directly as sum_c price_c (D - D'')_ic so that it is exactly 0 for
  // unleaked titles and carries no cancellation error; legal revenue = counterfactual - loss.
  auto title_loss = title_loss_.segment(b0, m);
  title_loss = P.price_usd[0] * net[0]->col(0).head(m) + P.price_usd[1] * net[1]->col(1).head(m) +
               P.price_usd[2] * net[2]->col(2).head(m) + P.price_usd[3] * net[3]->col(3).head(m);
  for (int c = 0; c < kChannels; ++c) {
    out.counterfactual += P.price_usd[c] * demand_.col(c).segment(b0, m).sum();
    out.lost[c] = net[c]->col(c).head(m).sum();
  }
  // Attribution to the source of the first public copy (flags are 0 for unleaked titles,
  // whose loss is exactly 0 anyway). Scene = total - P2P.
  out.p2p = (title_loss * s.p2p.head(m)).sum();
  out.pre = (title_loss * s.pre.head(m)).sum();
  // NaN guard: a NaN or inf anywhere in the block propagates into these sums, so checking
  // them is enough; the culprit is searched for only on failure (throw_non_finite).
  // (NaN * 0 and inf * 0 are NaN, so the flag-weighted sums see every title's loss.)
  const double check = out.counterfactual + out.lost[0] + out.lost[1] + out.lost[2] + out.lost[3] + out.p2p + out.pre;
  if (!std::isfinite(check)) {
    out.finite = false;
    return out;
  }

#ifdef PIRACY_SEATBELTS
  // Invariant: piracy never creates legal demand in total. sum_k (D - D'')_ik
  // = sum_j L_ij (1 - sum_k E_ik S(k, j)) >= 0 because L >= 0 and S's column sums are <= 1.
  for (Eigen::Index i = 0; i < m && out.seatbelt.empty(); ++i) {
    double units = 0.0;
    for (int c = 0; c < kChannels; ++c) units += (*net[c])(i, c);
    const double scale = demand_.row(b0 + i).sum();
    if (units < -1e-9 * scale || !(A(i) >= 0.0 && A(i) <= 1.0)) {
      out.seatbelt = fmt::format(
          "market seatbelt: title {} on day {}: net lost demand {} units < 0 or availability {} outside [0, 1]",
          row_title_[static_cast<std::size_t>(b0 + i)], t, units, A(i));
    }
  }
#else
  (void)t;
#endif

  // Counterfactual demand of tomorrow, exponential decay after the window opens:
  //   D_ic(t) = a_i share_c (1 - e^{-lambda_c}) e^{-lambda_c (t - s_ic)} for t >= s_ic, else 0
  // (the day-integral of a_i share_c lambda_c e^{-lambda_c (t - s)}: see the constructor), kept
  // by the recursion D(t+1) = e^{-lambda_c} D(t): one multiplication instead of an exp per
  // title, channel and day. Absent and unopened windows stay at 0 until open_windows().
  for (int c = 0; c < kChannels; ++c) demand_.col(c).segment(b0, m) *= retention_[c];
  return out;
}

void Market::throw_non_finite(std::int32_t day, Eigen::Index b0, Eigen::Index m, const BlockScratch& s) const {
  const auto fail = [&](const char* quantity, double value, Eigen::Index row, int channel) {
    const std::int32_t id = row_title_[static_cast<std::size_t>(row)];
    const MarketTitle& title = titles_[static_cast<std::size_t>(id)].title;
    throw NumericalError(fmt::format(
        "market: non-finite {} = {} for title {}{} on day {} (audience {}, popularity {}): the numbers overflow "
        "double precision; check the title's audience and the market prices",
        quantity, value, id, channel >= 0 ? fmt::format(" (channel {})", kChannelNames[channel]) : std::string{},
        day, title.audience, title.popularity));
  };
  for (Eigen::Index i = 0; i < m; ++i) {
    const Eigen::Index row = b0 + i;
    if (!std::isfinite(avail_(row))) fail("availability A", avail_(row), row, -1);
    for (int c = 0; c < kChannels; ++c) {
      if (!std::isfinite(demand_(row, c))) fail("counterfactual demand D", demand_(row, c), row, c);
      const double revenue = params_.price_usd[c] * demand_(row, c);
      if (!std::isfinite(revenue)) fail("counterfactual revenue price*D", revenue, row, c);
      if (!std::isfinite(s.lost(i, c))) fail("demand lost to piracy D - D'", s.lost(i, c), row, c);
      const double net = recovers_[c] && has_substitution_ ? s.net(i, c) : s.lost(i, c);
      if (!std::isfinite(net)) fail("net lost demand D - D''", net, row, c);
    }
    if (!std::isfinite(title_loss_(row))) fail("loss", title_loss_(row), row, -1);
  }
  throw NumericalError(fmt::format(
      "market: a sum of revenue or loss over titles in the market on day {} is not finite (overflow): check the "
      "titles' audiences and the market prices",
      day));
}

LossSummary Market::summary() const {
  LossSummary s = totals_;
  s.by_group_usd.clear();
  for (std::size_t g = 0; g < group_ids_.size(); ++g) s.by_group_usd[group_ids_[g]] += group_total_[g];
  return s;
}

std::map<std::int32_t, double> Market::loss_by_group_between(std::int32_t from_day, std::int32_t to_day) const {
  std::map<std::int32_t, double> out;
  if (to_day < from_day) return out;
  const auto lo = std::lower_bound(ledger_day_.begin(), ledger_day_.end(), from_day);
  const auto hi = std::upper_bound(ledger_day_.begin(), ledger_day_.end(), to_day);
  for (auto it = lo; it != hi; ++it) {
    const auto k = static_cast<std::size_t>(it - ledger_day_.begin());
    for (std::size_t e = ledger_start_[k]; e < ledger_start_[k + 1]; ++e) {
      out[group_ids_[static_cast<std::size_t>(ledger_[e].slot)]] += ledger_[e].loss_usd;
    }
  }
  return out;
}

}  // namespace piracy::economics
