// The Scene agent model: runtime. MODEL.md sections 2-3; docs/ODD.md describes every
// submodel with its equations and sources. Process order per tick is fixed (see step()).
#include "agents/simulation.hpp"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>
#include <tbb/parallel_reduce.h>
#include <tbb/parallel_sort.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <exception>
#include <fmt/format.h>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <utility>

#include "agents/decision.hpp"
#include "engine/error.hpp"
#include "engine/exp4.hpp"
#include "engine/interrupt.hpp"
#include "engine/progress.hpp"
#include "engine/rng.hpp"
#include "engine/samplers.hpp"

namespace piracy {

void Sceners::resize(std::size_t n) {
  group.resize(n, -1);
  role.resize(n, 0);
  status.resize(n, static_cast<std::uint8_t>(ScenerStatus::Absent));
  action.resize(n, kDormant);
  imitate.resize(n, 0);
  skill.resize(n, 1.0f);
  alpha.resize(n, 0.5f);
  rho.resize(n, 1.0f);
  recognition.resize(n, 0.0f);
  chill.resize(n, 0.0f);
  hat.resize(n, Expectations{});
  payoff_ema.resize(n, 0.0f);
  money_usd.resize(n, 0.0f);
  site.resize(n, -1);
  ban_until.resize(n, -1);
  sell_site.resize(n, -1);
  sold_today.resize(n, 0);
  detected.resize(n, 0);
  caught.resize(n, 0);
}

namespace {

/// Threads the calling code may use: its arena's slots (one in an ensemble's run), capped by a
/// tbb::global_control limit (run_scenario's --threads), which max_concurrency() does not see.
int usable_threads() {
  return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()),
                                                tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism)));
}

/// The kInline sizes: below them a parallel loop runs on the calling thread instead (parallel_for_large(),
/// parallel_chunks()). Why: on this guest a parallel loop may cost the wake-up of a sleeping
/// worker, ~30 us when the host is slow to wake a halted vCPU (a 10 us loop took 43 us on 2
/// threads after a 1 ms idle gap, against 10 us on one), more than the default run's loops
/// (~3,000 sceners, ~350 groups) saved by splitting: its day ran no faster on 2 threads than on 1,
/// and the sequential phases between the loops ~1.5x slower (docs/PERFORMANCE.md 21). Each size
/// is about 0.1-0.5 ms of the loop's work on one core. Every loop that uses them gives the same
/// values for any split of its range (each item's work is its own, or chunk results are read in
/// order), so they never change a result; and they depend on the sizes only, never on the thread
/// count.
constexpr std::size_t kInlineSceners = 16384;    //!< per-scener passes: ~30 ns a scener
constexpr std::size_t kInlineGroups = 4096;      //!< per-group passes: ~30-60 ns a group
constexpr std::size_t kInlineRaceGroups = 1024;  //!< the race's attempts: ~200 ns a group
constexpr std::size_t kInlineSlots = 16384;      //!< per-slot passes of the race

/// tbb::parallel_for over [begin, end) in ranges of at least `grain`, or body([begin, end)) on the
/// calling thread when the range has fewer than `inline_below` items.
template <class Index, class Body>
void parallel_for_large(Index begin, Index end, Index grain, std::size_t inline_below, Body&& body) {
  const tbb::blocked_range<Index> range(begin, end, grain);
  if (static_cast<std::size_t>(end - begin) < inline_below) body(range);
  else tbb::parallel_for(range, body);
}
/// Runs body(c, k0, k1) for the fixed chunks [k0, k1) = [c * chunk, min(n, (c + 1) * chunk)) of
/// a range of n items, chunks in parallel, after resizing `scratch` to hold one entry per chunk
/// (grown, never shrunk: reused from day to day). Chunk boundaries depend on n and chunk only,
/// never on the thread count: a pass that lists each chunk's contributions in order and applies
/// them chunk by chunk has the result of a sequential pass in the same order (exact sums). Below
/// `inline_below` items the chunks run one after the other on the calling thread (the kInline sizes).
/// Returns the number of chunks.
template <class Scratch, class Body>
std::size_t parallel_chunks(std::size_t n, std::size_t chunk, std::size_t inline_below, std::vector<Scratch>& scratch,
                            Body&& body) {
  const std::size_t chunks = (n + chunk - 1) / chunk;
  if (scratch.size() < chunks) scratch.resize(chunks);
  if (n < inline_below) {  // on the calling thread: see the kInline sizes
    for (std::size_t c = 0; c < chunks; ++c) body(c, c * chunk, std::min(n, (c + 1) * chunk));
    return chunks;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, chunks, 1), [&](const tbb::blocked_range<std::size_t>& cr) {
    for (std::size_t c = cr.begin(); c != cr.end(); ++c) body(c, c * chunk, std::min(n, (c + 1) * chunk));
  });
  return chunks;
}
/// Makes room for n elements in a scratch buffer whose contents are about to be rewritten. When
/// it is too small, the old buffer is released before a larger one (1/8 headroom) is allocated:
/// a growing vector copies its contents into a buffer twice the size while both are held. At 1M
/// sceners the day's ~830,000 slots (20 MB) outgrew their buffer on day 5 of the benchmark and the
/// copy put ~40 MB on the peak resident memory (docs/PERFORMANCE.md 12).
template <class T, class A>
void reserve_scratch(std::vector<T, A>& v, std::size_t n) {
  if (n <= v.capacity()) return;
  v = std::vector<T, A>();
  v.reserve(n + n / 8);
}
/// Active-list ids per chunk of the chunked scener passes: 1/16 of the list, between 2,048 and
/// 16,384 ids (64 KB). A function of the list's length only, never of the thread count (the chunks'
/// results are read in order: any chunking gives the same values). The default run's ~3,800
/// sceners made one chunk of 16,384, so these passes never split (docs/PERFORMANCE.md 16); at 1M
/// sceners more, smaller chunks cost memory (one set of lists per chunk).
constexpr std::size_t active_chunk(std::size_t n) { return std::clamp<std::size_t>(n / 16, 2048, 16384); }
/// record()'s count of the Active sceners and their perceived risks' sum, in list order (the
/// same additions, so the same bytes, as the loop that was inline in record()). Not inlined:
/// inlined, GCC kept both sums in stack slots because their values live across record()'s later
/// calls, and each addition waited for the store of the one before (~4.6 ns a scener, 79% of
/// record()'s samples; 0.058 s of a default run, 0.065 s at 1M over 14 days: docs/PERFORMANCE.md 24).
struct RiskSum {
  std::int64_t active = 0;
  double risk = 0;
};
[[gnu::noinline]] RiskSum active_risk_sum(std::span<const std::int32_t> ids, const std::uint8_t* status, const float* chill,
                                          double per_chill) {
  std::int64_t n = 0;
  double risk = 0;
  for (const auto id : ids) {
    const auto i = static_cast<std::size_t>(id);
    if (status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
    ++n;
    risk += per_chill * (1.0 + chill[i]);
  }
  return {n, risk};
}
constexpr double kLn2 = 0.69314718055994530942;
/// dissolved_tick of a group that never had members (or a named group never founded).
constexpr std::int32_t kNeverExisted = -2;

/// Entity keys for streams that are not tied to one agent: high bits say which kind.
constexpr std::uint64_t kKeyCategory = 1ull << 36;
constexpr std::uint64_t kKeyTitle = 2ull << 36;
constexpr std::uint64_t kKeySite = 3ull << 36;
constexpr std::uint64_t kKeyGroup = 4ull << 36;
constexpr std::uint64_t kKeyOperation = 5ull << 36;
constexpr std::uint64_t kKeyP2P = 6ull << 36;
constexpr std::uint64_t kKeyGlobal = 7ull << 36;

double years_since_mid_2020(Date d) { return (d - Date::from_ymd(2020, 7, 1)) / 365.25; }

std::uint8_t category_mask(const std::vector<std::string>& names) {
  std::uint8_t m = 0;
  for (const auto& n : names) {
    const int c = category_index(n);
    if (c >= 0) m = static_cast<std::uint8_t>(m | (1u << c));
  }
  return m;
}

}  // namespace

Simulation::Simulation(const ScenarioConfig& cfg, std::vector<std::string> removed_groups)
    : cfg_(cfg), removed_(std::move(removed_groups)) {
  const auto& cal = cfg_.calendar;
  n_ticks_ = (cal.end - cal.burn_in_start) + 1;
  report_first_ = cal.start - cal.burn_in_start;
  calendar_.resize(static_cast<std::size_t>(n_ticks_));

  const auto& m = cfg_.market;
  economics::MarketParams mp;
  for (int c = 0; c < economics::kChannels; ++c) {
    const auto k = static_cast<std::size_t>(c);
    mp.price_usd[k] = m.price_usd[k];
    mp.share[k] = m.share[k];
    mp.decay_per_day[k] = m.decay_per_day[k];
    mp.displacement[k] = m.displacement[k];
    mp.pre_release_penalty[k] = m.pre_release_penalty[k];
    for (int j = 0; j < economics::kChannels; ++j)
      mp.substitution(c, j) = m.substitution[k][static_cast<std::size_t>(j)];
  }
  mp.piracy_propensity = m.piracy_propensity;
  mp.bass_p = m.bass_p;
  mp.bass_q = m.bass_q;
  mp.life_days = static_cast<std::int32_t>(m.life_days);
  market_ = std::make_unique<economics::Market>(mp);
  {
    // The market's room planned from the expected number of films (open_sources(): Poisson
    // arrivals at an exogenous rate), all of them and those made by the first reported day (every
    // one of which enters the market then): the title records' vector and the rows then grow once
    // instead of doubling, and the rows are written a part a day during the burn-in (Market::
    // prepare_first_step()). Expected counts plus four standard deviations: a larger count only
    // makes the market grow as it would without a plan. Memory only, no value changes
    // (docs/PERFORMANCE.md 27).
    const auto& cp = cfg_.categories[kMovie];
    double all = 0, first = 0;
    for (std::int32_t t = 0; t < n_ticks_; ++t) {
      const double rate = cp.titles_per_day * std::exp(cp.growth_per_year * years_since_mid_2020(date_of(t)));
      all += rate;
      if (t <= report_first_) first += rate;
    }
    const auto with_margin = [](double n) {
      return static_cast<std::int64_t>(std::min(n + 4.0 * std::sqrt(n) + 64.0, 1e9));
    };
    if (std::isfinite(all)) market_->plan_capacity(with_margin(all), with_margin(first));
  }

  series_ = std::make_unique<SeriesTable>(cal.start, (cal.end - cal.start) + 1);
  auto& s = *series_;
  s.add_column("releases_scene", Agg::Sum, true);
  s.add_column("releases_p2p", Agg::Sum, true);
  for (int c = 0; c < kCategories; ++c)
    s.add_column(fmt::format("releases_{}", kCategoryNames[static_cast<std::size_t>(c)]), Agg::Sum, true);
  s.add_column("slots_open", Agg::Sum, true);
  s.add_column("dupes_nuked", Agg::Sum, true);
  s.add_column("active_sceners", Agg::Mean);
  s.add_column("dormant_sceners", Agg::Mean);
  s.add_column("sceners_total", Agg::Last, true);
  s.add_column("new_sceners", Agg::Sum, true);
  s.add_column("retired", Agg::Sum, true);
  s.add_column("arrests", Agg::Sum, true);
  s.add_column("arrested_total", Agg::Last, true);
  s.add_column("sellers", Agg::Mean);
  s.add_column("sold_accounts", Agg::Mean);
  s.add_column("access_price_usd", Agg::Mean);
  s.add_column("seller_income_usd", Agg::Sum);
  s.add_column("live_topsites", Agg::Mean);
  s.add_column("dark_topsites", Agg::Mean);
  s.add_column("seized_topsites_total", Agg::Last, true);
  s.add_column("topsites_founded", Agg::Sum, true);
  s.add_column("active_groups", Agg::Mean);
  s.add_column("groups_formed", Agg::Sum, true);
  s.add_column("groups_dissolved", Agg::Sum, true);
  s.add_column("p2p_groups", Agg::Mean);
  s.add_column("leaks_scene", Agg::Sum, true);
  s.add_column("leaks_pre_release", Agg::Sum, true);
  s.add_column("mean_perceived_risk", Agg::Mean);
  market_col_ = s.add_column("legal_revenue_usd", Agg::Sum);  // the market's columns come last (market_day())
  s.add_column("counterfactual_revenue_usd", Agg::Sum);
  s.add_column("studio_loss_usd", Agg::Sum);

  op_order_.resize(cfg_.enforcement.operations.size());
  std::iota(op_order_.begin(), op_order_.end(), 0);
  std::stable_sort(op_order_.begin(), op_order_.end(), [&](int a, int b) {
    return cfg_.enforcement.operations[static_cast<std::size_t>(a)].date <
           cfg_.enforcement.operations[static_cast<std::size_t>(b)].date;
  });
  init_population();
}

Simulation::~Simulation() = default;

// ---------------------------------------------------------------------------------------------
// Creation of agents
// ---------------------------------------------------------------------------------------------

std::int32_t Simulation::new_scener(Role role, std::int32_t group, float skill, float alpha,
                                    Purpose purpose, std::uint64_t entity_key) {
  const auto id = static_cast<std::int32_t>(sc_.size());
  sc_.resize(sc_.size() + 1);
  const auto i = static_cast<std::size_t>(id);
  const auto& p = cfg_.sceners;
  Stream rng(cfg_.seed, purpose, entity_key, tick_);
  sc_.role[i] = static_cast<std::uint8_t>(role);
  note_member(i);  // (resize() made it Absent, between groups: in no group's range)
  sc_.group[i] = group;
  sc_.status[i] = static_cast<std::uint8_t>(ScenerStatus::Active);
  active_.push_back(id);  // the largest id so far: the list stays ascending
  sc_.skill[i] = skill > 0 ? skill : static_cast<float>(sample::lognormal(rng, 0.0, p.skill_sigma));
  const float drawn = static_cast<float>(sample::beta(rng, p.alpha_a, p.alpha_b));  // drawn always: streams stay aligned
  sc_.alpha[i] = alpha >= 0 ? alpha : (p.alpha_fixed >= 0 ? static_cast<float>(p.alpha_fixed) : drawn);
  sc_.rho[i] = static_cast<float>(sample::lognormal(rng, 0.0, p.risk_aversion_sigma));
  sc_.hat[i][kRelease].r = static_cast<float>(p.initial_release_expectation);
  sc_.hat[i][kSell].m = static_cast<float>(p.initial_money_expectation);
  return id;
}

std::int32_t Simulation::new_group(std::uint8_t categories, bool fraud, std::uint64_t entity_key) {
  Group g;
  g.id = static_cast<std::int32_t>(groups_.size());
  g.alive = true;
  alive_groups_.push_back(g.id);  // the largest id so far: the list stays ascending
  g.founded_tick = tick_;
  g.last_release_tick = tick_;
  const auto& p = cfg_.groups;
  Stream rng(cfg_.seed, Purpose::Structure, kKeyGroup | entity_key, tick_);
  if (categories == 0) {
    std::array<double, kCategories> w{};
    for (int c = 0; c < kCategories; ++c) w[static_cast<std::size_t>(c)] = cfg_.categories[c].group_weight;
    const auto c1 = sample::categorical(rng, w);
    categories = static_cast<std::uint8_t>(1u << c1);
    if (sample::bernoulli(rng, p.second_category_share))
      categories = static_cast<std::uint8_t>(categories | (1u << sample::categorical(rng, w)));
  }
  g.categories = categories;
  g.web = sample::bernoulli(rng, p.web_share);
  const bool video = g.has_category(kMovie) || g.has_category(kTv);
  g.retail_disc = video && sample::bernoulli(rng, p.retail_disc_share);
  g.tv_capture = g.has_category(kTv) && sample::bernoulli(rng, p.tv_capture_share);
  g.fraud = fraud || (g.has_category(kMovie) && sample::bernoulli(rng, p.fraud_share));
  g.fraud_title_share = p.fraud_title_share;
  if (!g.web && !g.retail_disc && !g.tv_capture) g.web = true;  // every group has some source
  groups_.push_back(std::move(g));
  return groups_.back().id;
}

std::int32_t Simulation::new_site(int tier, std::uint64_t entity_key) {
  Topsite s;
  s.id = static_cast<std::int32_t>(sites_.size());
  s.tier = tier;
  s.founded_tick = tick_;
  Stream rng(cfg_.seed, Purpose::Structure, kKeySite | entity_key, tick_);
  s.country = static_cast<int>(sample::categorical(rng, cfg_.topsites.country_weights));
  s.servers = 1 + static_cast<int>(sample::poisson(rng, cfg_.topsites.servers_mean - 1.0));
  sites_.push_back(std::move(s));
  return sites_.back().id;
}

void Simulation::init_population() {
  const auto& sp = cfg_.sceners;
  const auto& gp = cfg_.groups;
  const auto& tp = cfg_.topsites;
  Stream rng(cfg_.seed, Purpose::Population, kKeyGlobal, 0);

  // Topsites: a ranked pyramid (TorrentFreak 2010: 2/3/4/5/6/7 per tier).
  for (std::size_t k = 0; k < tp.tier_sizes.size(); ++k)
    for (std::int64_t j = 0; j < tp.tier_sizes[k]; ++j)
      new_site(static_cast<int>(k), static_cast<std::uint64_t>(sites_.size()));

  // Named groups and their members get reserved ids first, so that removing one in a
  // counterfactual run leaves every other entity's id -- and so its random streams -- unchanged.
  for (std::size_t k = 0; k < cfg_.named_groups.size(); ++k) {
    const auto& ng = cfg_.named_groups[k];
    const bool removed = std::find(removed_.begin(), removed_.end(), ng.name) != removed_.end();
    const auto gid = new_group(category_mask(ng.categories), ng.distributor_fraud, k);
    auto& g = groups_[static_cast<std::size_t>(gid)];
    g.named_index = static_cast<std::int32_t>(k);
    g.named = true;
    g.alive = false;
    g.fraud_title_share = ng.fraud_title_share;
    g.retail_disc = true;
    g.web = true;
    g.founded_tick = removed ? -1 : tick_of(ng.founded);
    named_ids_.push_back(removed ? -1 : gid);
    named_first_scener_.push_back(static_cast<std::int32_t>(sc_.size()));
    for (std::int64_t j = 0; j < ng.members; ++j) {
      // Sparks: suppliers posed as retailers; the others ripped and distributed.
      const Role role = j < std::max<std::int64_t>(1, ng.members / 4) ? Role::Supplier : Role::Ripper;
      const auto id = new_scener(role, gid, static_cast<float>(ng.skill), static_cast<float>(ng.alpha),
                                 Purpose::Population, sc_.size());
      sc_.status[static_cast<std::size_t>(id)] = static_cast<std::uint8_t>(ScenerStatus::Absent);
    }
  }

  // Ordinary groups with heavy-tailed sizes (most groups are small: Décary-Hétu et al. 2012).
  const auto first_group = static_cast<std::int32_t>(groups_.size());
  std::vector<double> size_weight;
  for (std::int64_t j = 0; j < gp.initial_groups; ++j) {
    const auto gid = new_group(0, false, static_cast<std::uint64_t>(groups_.size()));
    auto& g = groups_[static_cast<std::size_t>(gid)];
    g.founded_tick = -static_cast<std::int32_t>(sample::uniform_index(rng, 1500));
    g.recognition = sample::exponential(rng, 1.0);
    size_weight.push_back(sample::lognormal(rng, 0.0, 1.0));
  }
  const sample::AliasTable pick_group(size_weight);
  const std::array<double, 4> role_w = {sp.role_shares[0], sp.role_shares[1], sp.role_shares[2],
                                        sp.role_shares[3]};
  for (std::int64_t j = 0; j < sp.initial_sceners; ++j) {
    const auto role = static_cast<Role>(sample::categorical(rng, role_w));
    const auto g = first_group + static_cast<std::int32_t>(pick_group.sample(rng));
    new_scener(role, g, -1.0f, -1.0f, Purpose::Population, sc_.size());
  }
  // Site operators run the initial sites (one each; extra operators may found sites later).
  std::size_t next_site = 0;
  for (std::size_t i = 0; i < sc_.size() && next_site < sites_.size(); ++i)
    if (sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active) &&
        sc_.role[i] == static_cast<std::uint8_t>(Role::Operator))
      sc_.site[i] = static_cast<std::int32_t>(next_site++);

  // P2P groups.
  const auto& pp = cfg_.p2p;
  for (std::int64_t j = 0; j < pp.initial_groups; ++j) {
    P2PGroup p;
    p.id = static_cast<std::int32_t>(p2p_.size());
    Stream r(cfg_.seed, Purpose::P2P, kKeyP2P | static_cast<std::uint64_t>(p.id), 0);
    p.categories = static_cast<std::uint8_t>(1u << sample::categorical(r, pp.category_weights));
    p.capacity = sample::exponential(r, 1.0 / pp.capacity_mean);
    p.prerelease = sample::bernoulli(r, pp.prerelease_share);
    p.founded_tick = 0;
    p2p_.push_back(p);
  }

  // Initial affiliations: a few rounds of the same rule used every day.
  initializing_ = true;
  rebuild_members();
  for (auto& g : groups_) if (g.alive && g.members == 0 && !g.named) { g.alive = false; g.dissolved_tick = kNeverExisted; }
  for (int round = 0; round < 6; ++round) affiliate();
  initializing_ = false;
}

void Simulation::schedule(std::int32_t tick, const SlotBatch& b) {
  if (tick < tick_) tick = tick_;
  if (tick >= n_ticks_ || b.slots == 0) return;
  calendar_[static_cast<std::size_t>(tick)].push_back(b);
}

// ---------------------------------------------------------------------------------------------
// Step 1: sources open
// ---------------------------------------------------------------------------------------------

void Simulation::open_sources() {
  const Date today = date_of(tick_);
  const double years = years_since_mid_2020(today);
  const auto& mv = cfg_.movies;
  std::array<std::uint64_t, kCategories> other_slots{};  // today's slots of the non-film categories

  for (int c = 0; c < kCategories; ++c) {
    const auto& cp = cfg_.categories[c];
    Stream rng(cfg_.seed, Purpose::TitleArrival, kKeyCategory | static_cast<std::uint64_t>(c), tick_);
    const double rate = cp.titles_per_day * std::exp(cp.growth_per_year * years);
    const auto n_titles = sample::poisson(rng, rate);
    if (c != kMovie) {
      // Titles of other categories open at once (air date, release date): n titles with
      // 1 + Poisson(slots - 1) slots each, summed into one Poisson draw.
      other_slots[static_cast<std::size_t>(c)] =
          n_titles + sample::poisson(rng, static_cast<double>(n_titles) * (cp.slots_per_title - 1.0));
      continue;
    }
    // Films: theatrical release today; later windows scheduled on the calendar.
    const double t_lead = std::clamp((today.year() + (today.month() - 1) / 12.0 - 2011.0) / 4.0, 0.0, 1.0);
    const double digital_lead = mv.digital_lead_days_2011 + t_lead * (mv.digital_lead_days_2015 - mv.digital_lead_days_2011);
    for (std::uint64_t k = 0; k < n_titles; ++k) {
      economics::MarketTitle mt;
      Stream tr(cfg_.seed, Purpose::TitleAttributes, kKeyTitle | static_cast<std::uint64_t>(market_titles_), tick_);
      mt.audience = sample::lognormal(tr, std::log(mv.audience_median), mv.audience_sigma);
      mt.popularity = 1.0;
      const bool disc = sample::bernoulli(tr, mv.disc_share);
      const std::int32_t street = tick_ + static_cast<std::int32_t>(mv.disc_after_theatrical_days);
      const std::int32_t digital = street - static_cast<std::int32_t>(std::lround(digital_lead));
      const auto base_day = cfg_.calendar.burn_in_start.days;
      mt.window_start[economics::kTheatrical] = base_day + tick_;
      mt.window_start[economics::kDisc] = disc ? base_day + street : -1;
      mt.window_start[economics::kDigital] = base_day + digital;
      mt.window_start[economics::kSubscription] =
          base_day + street + static_cast<std::int32_t>(mv.subscription_after_disc_days);
      // Handed to the market's day (market_day()), which gives it this id.
      const auto title = market_titles_++;
      market_days_[static_cast<std::size_t>(tick_ & 1)].titles.push_back(mt);
      title_leaked_.push_back(0);
      const auto n_web = static_cast<std::uint16_t>(std::max<std::uint64_t>(1, sample::poisson(tr, mv.web_slots)));
      schedule(digital, {title, kMovie, Source::Web, n_web, street});
      if (!disc) continue;
      const auto n_disc = static_cast<std::uint16_t>(std::max<std::uint64_t>(1, sample::poisson(tr, mv.disc_slots)));
      const auto lead = mv.wholesale_lead_min_days +
                        static_cast<std::int64_t>(sample::uniform_index(
                            tr, static_cast<std::size_t>(mv.wholesale_lead_max_days - mv.wholesale_lead_min_days + 1)));
      std::int32_t wholesale = street - static_cast<std::int32_t>(lead);
      // Distributor screening delays discs for buyers posing as retailers (MODEL.md s.6).
      if (date_of(wholesale) >= cfg_.enforcement.screening_from)
        wholesale += static_cast<std::int32_t>(cfg_.enforcement.screening_delay_days);
      if (wholesale < street)
        schedule(wholesale, {title, kMovie, Source::Wholesale, n_disc, street});
      else
        schedule(street, {title, kMovie, Source::Disc, n_disc, street});
      schedule(street - static_cast<std::int32_t>(cfg_.p2p.prerelease_days),
               {title, kMovie, Source::P2PPrerelease, 1, street});
    }
  }
  // Today's slots, sorted by (category, source) so that each group scans contiguous ranges: the
  // slots of the other categories (in category order), then those of today's calendar batches
  // (in batch order), each written straight to its place -- a stable counting sort of that
  // sequence, without a second buffer (at 1M sceners ~400,000 slots a day, 10 MB).
  static_assert(static_cast<std::size_t>(Source::P2PPrerelease) + 1 == kSources);
  const auto key = [](std::size_t category, Source source) {
    return category * kSources + static_cast<std::size_t>(source);
  };
  const auto other_source = [](std::size_t c) { return c == kTv ? Source::Tv : Source::Web; };
  const auto& batches = calendar_[static_cast<std::size_t>(tick_)];
  std::array<std::size_t, kCategories * kSources + 1> start{};
  for (std::size_t c = 0; c < kCategories; ++c) start[key(c, other_source(c)) + 1] += other_slots[c];
  for (const auto& b : batches) start[key(b.category, b.source) + 1] += b.slots;
  for (std::size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  if (start.back() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw ModelError(fmt::format("{} release slots open on day {}: more than 2^31 (slot indices are 32-bit); "
                                 "reduce the scenario's title rates", start.back(), tick_));
  reserve_scratch(slots_, start.back());
  slots_.resize(start.back());
  // (index_slots() reads the ranges from here: a pass over the slots to find them again was 2%
  // of a run at 1M sceners.)
  std::copy(start.begin(), start.end(), slot_start_.begin());
  // The other categories' slots are each a function of its place only: written in parallel (at
  // 1M sceners ~700,000 a day, 17 MB, were most of this phase, on one core: docs/PERFORMANCE.md 16).
  for (std::size_t c = 0; c < kCategories; ++c) {
    const Source src = other_source(c);
    auto& at = start[key(c, src)];
    const std::size_t first = at;
    // (On the calling thread below kInlineSlots: the default run's ~700 slots a category made
    // one range, and handing it to TBB cost a task and a worker's wake-up, 7 times a day.)
    parallel_for_large(std::uint64_t{0}, other_slots[c], std::uint64_t{16384}, kInlineSlots, [&](const tbb::blocked_range<std::uint64_t>& r) {
      for (std::uint64_t k = r.begin(); k != r.end(); ++k)
        slots_[first + k] = {.uid = (1ull << 39) | (static_cast<std::uint64_t>(c) << 28) | (k & 0xFFFFFFFull),
                             .title = -1,
                             .street_tick = -1,
                             .category = static_cast<std::uint8_t>(c),
                             .source = src,
                             .pre_release = false};
    });
    at += other_slots[c];
  }
  for (const auto& b : batches) {
    const bool pre = b.source == Source::Wholesale || b.source == Source::P2PPrerelease;
    auto& at = start[key(b.category, b.source)];
    for (int k = 0; k < b.slots; ++k)
      slots_[at++] = {.uid = (static_cast<std::uint64_t>(b.title) << 10) | (static_cast<std::uint64_t>(b.source) << 7) |
                             static_cast<std::uint64_t>(std::min(k, 127)),
                      .title = b.title,
                      .street_tick = b.street_tick,
                      .category = b.category,
                      .source = b.source,
                      .pre_release = pre};
  }
  calendar_[static_cast<std::size_t>(tick_)].clear();
  calendar_[static_cast<std::size_t>(tick_)].shrink_to_fit();
}

// ---------------------------------------------------------------------------------------------
// Step 2: scener decisions (parallel)
// ---------------------------------------------------------------------------------------------

void Simulation::decide() {
  // Group facts every member reads: best live tier and leak probability (from sold accounts).
  const auto& ap = cfg_.access;
  // Listed groups only: an unlisted group died at least a day ago and was given best_tier = -1
  // and no sell site here then, which is what this pass would give it again.
  // Compact per-group and per-site facts for the scener loop below: one byte or int per entity
  // instead of a 128-byte Group, its heap-allocated site list and the Topsites behind it (three
  // dependent cache misses per scener at 1M sceners: docs/PERFORMANCE.md 5.2).
  //   group_sell_site_[g]: the live site of g's list with the lowest tier (the first such in
  //   list order), -1 if g cannot release (dead, or no live site): where a member sells when it
  //   has no site of its own.
  // Each group writes only its own fields and reads the sites: in parallel over groups.
  site_live_.resize(sites_.size());
  for (std::size_t s = 0; s < sites_.size(); ++s) site_live_[s] = sites_[s].live() ? 1 : 0;
  group_sell_site_.resize(groups_.size(), -1);
  group_leak_p_.resize(groups_.size());
  const auto& listed = alive_groups_;
  parallel_for_large(std::size_t{0}, listed.size(), std::size_t{512}, kInlineGroups, [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t k = r.begin(); k != r.end(); ++k) {
      const auto gi = static_cast<std::size_t>(listed[k]);
      auto& g = groups_[gi];
      g.best_tier = -1;
      group_sell_site_[gi] = -1;
      if (!g.alive) continue;
      double accounts = 0;
      for (auto s : g.sites) {
        const auto& site = sites_[static_cast<std::size_t>(s)];
        if (!site.live()) continue;
        if (g.best_tier < 0 || site.tier < g.best_tier) g.best_tier = site.tier;
        accounts += site.sold_accounts;
      }
      // Selling leech accounts spreads releases beyond the Scene's servers (Le Monde 2020).
      // Kept in a compact per-group array rather than in the Group: race() reads it for every
      // won slot, and at 1M sceners a Group per read missed the cache (docs/PERFORMANCE.md 14).
      group_leak_p_[gi] = 1.0 - (1.0 - ap.base_leak) * std::exp(-ap.leak_per_account * accounts);
      std::int32_t best = -1;
      if (g.best_tier >= 0) {
        for (auto s : g.sites)
          if (site_live_[static_cast<std::size_t>(s)] &&
              (best < 0 || sites_[static_cast<std::size_t>(s)].tier < sites_[static_cast<std::size_t>(best)].tier))
            best = s;
      }
      group_sell_site_[gi] = best;
    }
  });

  const auto& sp = cfg_.sceners;
  const auto& ep = cfg_.enforcement;
  const float chill_decay = static_cast<float>(std::exp(-kLn2 / ep.chill_half_life_days));
  const decision::Params dp{.perceived_base = ep.detection_per_day * ep.perception,
                            .sanction = ep.sanction,
                            .sell_multiplier = ep.sell_multiplier,
                            .peer_catch = ep.peer_catch,
                            .peer_penalty = ep.peer_penalty,
                            .dormant_factor = ep.dormant_factor,
                            .outside_option = sp.outside_option,
                            .beta = sp.beta};
  // Four sceners side by side where glibc's exp takes its FMA path (agents/decision.hpp: the
  // same values as one after the other; docs/PERFORMANCE.md 19).
  const bool four = exp4::fma_path();
  // Eight side by side where the model's 8-lane kernels run (sample::avx512_kernels(); the same
  // values either way, docs/PERFORMANCE.md 23).
  const bool eight = sample::avx512_kernels();
  const std::size_t width = eight ? 8 : 4;
  static_assert(StreamBatch::kLanes % 8 == 0, "a batch of streams holds whole groups of 4 and of 8 sceners");
  const std::size_t n = active_.size();
  // Ranges of 512 sceners or more: with 2,048 the default run's ~3,800 made two halves, and this
  // phase ran x1.09-1.11 as fast on 2 threads as on 1; x1.14-1.17 with 512 (likely: a second
  // thread that arrives late, woken or freed from the market's day, takes a smaller share and
  // keeps the first waiting less). Each scener's draws are its own: any ranges give the same values.
  // Below kInlineSceners (the default run's ~3,000 sceners) one range on the calling thread: on 2
  // threads the phase took longer than on 1 when the host was slow to wake the worker (docs/PERFORMANCE.md 21).
  parallel_for_large(std::size_t{0}, n, std::size_t{512}, kInlineSceners, [&](const tbb::blocked_range<std::size_t>& r) {
    // The decision streams' first blocks, StreamBatch::kLanes sceners at a time (docs/PERFORMANCE.md 14):
    // lane l's uniforms 0 and 1 are the first two draws of Stream(cfg_.seed, Purpose::Decision, i, tick_).
    StreamBatch streams;
    // The arrays' data pointers and the scalars in locals of the task, as in enforcement(): the
    // write-back's byte stores (action, imitate) may alias anything, so GCC reloaded every
    // vector's pointer from sc_ after them (docs/PERFORMANCE.md 20).
    const std::int32_t* const active = active_.data();
    const std::uint8_t* const status = sc_.status.data();
    const std::int32_t* const group = sc_.group.data();
    const std::int32_t* const own_site = sc_.site.data();
    const std::int32_t* const ban_until = sc_.ban_until.data();
    const float* const alpha = sc_.alpha.data();
    const float* const rho = sc_.rho.data();
    const float* const recognition = sc_.recognition.data();
    const Expectations* const hat = sc_.hat.data();
    const std::int32_t* const group_sell_site = group_sell_site_.data();
    const auto* const site_live = site_live_.data();
    float* const chill = sc_.chill.data();
    std::uint8_t* const action = sc_.action.data();
    std::uint8_t* const imitate = sc_.imitate.data();
    std::int32_t* const sell_site_of = sc_.sell_site.data();
    const std::int32_t tick = tick_;
    const double imitation_rate = sp.imitation_rate;
    for (std::size_t k0 = r.begin(); k0 < r.end(); k0 += StreamBatch::kLanes) {
      const std::size_t m = std::min(StreamBatch::kLanes, r.end() - k0);
      streams.fill(cfg_.seed, Purpose::Decision, tick, m, [&](std::size_t l) { return active[k0 + l]; });
      for (std::size_t q = 0; q < m; q += width) {
        std::array<decision::Inputs, 8> in;
        std::array<double, 8> x{};
        std::array<std::size_t, 8> ids{};
        std::array<std::int32_t, 8> sell{};
        unsigned live = 0;
        for (std::size_t j = 0; j < width && q + j < m; ++j) {
          const auto i = static_cast<std::size_t>(active[k0 + q + j]);
          if (status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
          live |= 1u << j;
          ids[j] = i;
          const float chill_i = chill[i] * chill_decay;
          chill[i] = chill_i;
          const auto gid = group[i];
          // A group can release when it is alive and has a live site, exactly when it has a site to sell on.
          const std::int32_t group_site = gid >= 0 ? group_sell_site[static_cast<std::size_t>(gid)] : -1;
          std::int32_t sell_site = -1;
          if (tick >= ban_until[i]) {
            const auto own = own_site[i];
            sell_site = own >= 0 && site_live[static_cast<std::size_t>(own)] ? own : group_site;
          }
          sell[j] = sell_site;
          // Field by field: an aggregate assigned whole was built in a temporary and copied by
          // 16-byte loads that overlapped its fresh one-byte stores (a store-forwarding stall,
          // 42% of this loop's samples in `perf annotate`).
          auto& v = in[j];
          v.alpha = alpha[i];
          v.rho = rho[i];
          v.chill = chill_i;
          v.recognition = recognition[i];
          v.hat = hat[i];
          v.release_ok = group_site >= 0;
          v.sell_ok = sell_site >= 0 && v.alpha < 1.0;
          x[j] = streams.uniform(q + j, 0);
        }
        if (live == 0) continue;
        std::array<int, 8> act{};
        unsigned bad = 0;
        if (four) {
#if PIRACY_EXP4_X86
          // Lanes without an active scener repeat one that has one (any finite inputs would do;
          // these keep the exp kernel on its fast path) and are not written back.
          const auto first = static_cast<std::size_t>(std::countr_zero(live));
          for (std::size_t j = 0; j < width; ++j)
            if (!((live >> j) & 1u)) { in[j] = in[first]; x[j] = x[first]; }
          bad = (eight ? decision::choose8_avx512(in.data(), dp, x.data(), act.data())
                       : decision::choose4_fma(in.data(), dp, x.data(), act.data())) &
                live;
#endif
        } else {
          for (std::size_t j = 0; j < 4; ++j) {
            if (!((live >> j) & 1u)) continue;
            act[j] = decision::choose_one(in[j], dp, x[j]);
            if (act[j] < 0) bad |= 1u << j;
          }
        }
        if (bad != 0) {  // numerical guard (issue 9): the first such scener in id order
          const auto j = static_cast<std::size_t>(std::countr_zero(bad));
          throw_non_finite_utility(ids[j], decision::utilities(in[j], dp));
        }
        for (std::size_t j = 0; j < width; ++j) {
          if (!((live >> j) & 1u)) continue;
          const auto i = ids[j];
          action[i] = static_cast<std::uint8_t>(act[j]);
          sell_site_of[i] = act[j] == kSell ? sell[j] : -1;
          imitate[i] = streams.uniform(q + j, 1) < imitation_rate ? 1 : 0;
        }
      }
    }
  });
}

void Simulation::aggregate_decisions() {
  // The listed groups' daily fields are reset, and the groups dissolved since yesterday leave the
  // list, in one pass (two passes over the Groups were ~1 ms a day at 1M sceners). Those have had
  // their daily fields reset one last time here and their last decide() pass: from now on
  // nothing changes them.
  std::erase_if(alive_groups_, [&](std::int32_t gid) {
    auto& g = groups_[static_cast<std::size_t>(gid)];
    g.effort = 0;
    g.active_members = 0;
    g.supplier_active = false;
    g.recognition_today = 0;
    g.wins_today = 0;
    return !g.alive;
  });
  for (auto& s : sites_) {
    s.sellers_prev = s.sellers;
    s.sellers = 0;
    s.fresh_today = 0;
    s.leaked_today = 0;
  }
  // Effort is summed into a compact per-group array (16 bytes a group instead of the 128-byte
  // Group: at 1M sceners the Groups are 14 MB and this loop missed the cache for every
  // releasing scener), in the same id order, then copied to the groups; a releasing scener's
  // group is alive, so listed. Counts are kept in integers: `t_.dormant += 1` per scener chained
  // every scener through memory; the counts are exact either way.
  // The scan over the Active list runs in parallel over fixed chunks, each listing its releasing
  // members and its sellers in id order and counting the rest; the lists are then applied chunk
  // by chunk, i.e. in id order (each group's effort is the same sum in the same order).
  const auto& eff = cfg_.sceners.role_effort;
  group_tally_.resize(groups_.size());
  for (const auto gid : alive_groups_) group_tally_[static_cast<std::size_t>(gid)] = GroupTally{};
  const std::size_t n = active_.size();
  const std::size_t chunks = parallel_chunks(n, active_chunk(n), kInlineSceners, agg_chunks_, [&](std::size_t c, std::size_t k0, std::size_t k1) {
    auto& out = agg_chunks_[c];
    out.sellers.clear();
    // Releasing members listed and the rest counted without a branch: the actions are mixed at
    // random, and the branches on them mispredicted (docs/PERFORMANCE.md 24). Sellers are few:
    // they keep their branch and a list of their own size.
    if (out.releasing.size() < k1 - k0) out.releasing.resize(k1 - k0);
    const std::int32_t* const ids = active_.data();
    const std::uint8_t* const status = sc_.status.data();
    const std::uint8_t* const action = sc_.action.data();
    const std::int32_t* const group = sc_.group.data();
    std::int32_t* const releasing = out.releasing.data();
    std::size_t n_releasing = 0;
    std::int64_t dormant = 0, active = 0;
    for (std::size_t k = k0; k < k1; ++k) {
      const std::int32_t id = ids[k];
      const auto i = static_cast<std::size_t>(id);
      const auto act = action[i];
      // Active and not retiring today: dormant, or active (releasing, selling or idle).
      const auto counted = static_cast<std::int64_t>(status[i] == static_cast<std::uint8_t>(ScenerStatus::Active)) &
                           static_cast<std::int64_t>(act != kRetire);
      const auto is_dormant = static_cast<std::int64_t>(act == kDormant);
      dormant += counted & is_dormant;
      active += counted & (is_dormant ^ 1);
      releasing[n_releasing] = id;
      n_releasing += static_cast<std::size_t>(counted & static_cast<std::int64_t>(act == kRelease) &
                                              static_cast<std::int64_t>(group[i] >= 0));
      if (act == kSell && counted != 0) out.sellers.push_back(sc_.sell_site[i]);
    }
    out.n_releasing = n_releasing;
    out.dormant = dormant;
    out.active = active;
  });
  std::int64_t dormant = 0, active = 0, sellers = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    const auto& out = agg_chunks_[c];
    dormant += out.dormant;
    active += out.active;
    sellers += static_cast<std::int64_t>(out.sellers.size());
    for (const auto id : std::span(out.releasing.data(), out.n_releasing)) {
      const auto i = static_cast<std::size_t>(id);
      auto& g = group_tally_[static_cast<std::size_t>(sc_.group[i])];
      g.effort += sc_.skill[i] * eff[sc_.role[i]];
      g.active_members += 1;
      if (sc_.role[i] == static_cast<std::uint8_t>(Role::Supplier)) g.supplier_active = true;
    }
    for (const auto site : out.sellers) sites_[static_cast<std::size_t>(site)].sellers += 1;
  }
  t_.dormant += static_cast<double>(dormant);
  t_.active += static_cast<double>(active);
  t_.sellers += static_cast<double>(sellers);
  for (const auto gid : alive_groups_) {
    auto& g = groups_[static_cast<std::size_t>(gid)];
    const auto& a = group_tally_[static_cast<std::size_t>(gid)];
    g.effort = a.effort;
    g.active_members = a.active_members;
    g.supplier_active = a.supplier_active;
  }
}

// ---------------------------------------------------------------------------------------------
// Step 3: release races
// ---------------------------------------------------------------------------------------------

Simulation::SlotIndex Simulation::index_slots(bool count_wholesale) const {
  // Ranges of today's slots by (category, source) -- slots_ is sorted that way, and
  // open_sources() kept where each (category, source) starts -- and the number of slots open in
  // each category (the denominator of attempt probabilities). Empty ranges stay (0, 0).
  SlotIndex ix;
  for (std::size_t c = 0; c < kCategories; ++c) {
    std::int64_t open = 0;
    for (std::size_t src = 0; src < kSources; ++src) {
      const std::size_t key = c * kSources + src;
      const auto lo = static_cast<std::int64_t>(slot_start_[key]), hi = static_cast<std::int64_t>(slot_start_[key + 1]);
      if (hi <= lo) continue;
      ix.range[c][src] = {lo, hi};
      const auto source = static_cast<Source>(src);
      if (source != Source::P2PPrerelease && (count_wholesale || source != Source::Wholesale)) open += hi - lo;
    }
    ix.open[c] = static_cast<double>(open);
  }
  return ix;
}

void Simulation::race() {
  // (named references, not a structured binding: the parallel lambda below captures them, which
  // clang 14 -- the fuzz build -- does not allow for structured bindings)
  const SlotIndex index = index_slots(true);
  const auto& range = index.range;
  const auto& open = index.open;
  t_.slots = 0;
  for (double o : open) t_.slots += o;

  // Attempts, generated in parallel over fixed chunks of the listed groups (every alive one):
  // each group's draws come from its own streams and are appended, group after group, to its
  // chunk's buffer; the buffers are read below chunk by chunk, i.e. in group order, so the
  // result is the same whatever the number of threads. (One buffer per chunk of 256 groups
  // rather than per group: ~10 MB less at 1M sceners, where 111,000 small per-group buffers
  // kept their largest size.)
  const auto& gp = cfg_.groups;
  const double mean_h = cfg_.races.finish_hours_mean;
  const auto& listed = alive_groups_;
  const std::size_t group_chunks = parallel_chunks(listed.size(), 256, kInlineRaceGroups, race_attempts_, [&](std::size_t chunk, std::size_t q0, std::size_t q1) {
    auto& attempts = race_attempts_[chunk];
    attempts.clear();
    StreamBatch blocks;
    for (std::size_t q = q0; q < q1; ++q) {
      const auto gi = static_cast<std::size_t>(listed[q]);
      const auto& g = groups_[gi];
      if (!g.alive || g.best_tier < 0 || g.effort <= 0) continue;
      const int ncat = std::popcount(static_cast<unsigned>(g.categories));
      const double effort_c = g.effort / ncat;
      // Finish time ~ Exponential with rate effort/mean: more (and more skilled) hands finish sooner.
      const double rate = effort_c / mean_h;
      for (int c = 0; c < kCategories; ++c) {
        if (!g.has_category(c) || open[static_cast<std::size_t>(c)] == 0) continue;
        // Attempt probability a = 1 - exp(-capacity / open slots): a group with capacity K
        // attempts about K of the day's slots when slots are plentiful, all of them when not.
        const double a = 1.0 - std::exp(-effort_c * gp.slots_per_effort / open[static_cast<std::size_t>(c)]);
        for (int src = 0; src < kSources; ++src) {
          const auto [lo, hi] = range[static_cast<std::size_t>(c)][static_cast<std::size_t>(src)];
          if (hi <= lo) continue;
          double p = a;
          switch (static_cast<Source>(src)) {
            case Source::Web: if (!g.web) p = 0; break;
            case Source::Disc: if (!g.retail_disc) p = 0; break;
            case Source::Tv: if (!g.tv_capture && !g.web) p = 0; break;
            // Discs at the wholesale date: only a supplier posing as a retailer gets them, and
            // for a share of titles (the Sparks vector, DoJ SDNY 2020).
            case Source::Wholesale: p = (g.fraud && g.supplier_active) ? g.fraud_title_share : 0; break;
            case Source::P2PPrerelease: p = 0; break;
          }
          if (p <= 0) continue;
          // One stream per (group, category, source): the draws for one range do not depend on
          // how many slots other ranges hold today (common random numbers in paired runs).
          const std::uint64_t entity =
              static_cast<std::uint64_t>(g.id) | (static_cast<std::uint64_t>(c * kSources + src) << 32);
          const double l1m = p >= 1.0 ? -1e300 : std::log1p(-p);
          // The group's attempts on the range and their finish times (one stream per range:
          // Stream(seed, Race, entity, tick), its draws taken in batches, bit for bit the loop
          // of sample::timed_attempts_reference() on it: sample::timed_attempts). Geometric
          // skipping (Devroye 1986, ch. X.2): a group visits only the slots it attempts.
          sample::timed_attempts(blocks, cfg_.seed, Purpose::Race, entity, tick_, lo, hi, l1m, rate,
                                 [&](std::int64_t k, double hours) {
                                   attempts.push_back({hours, static_cast<std::int32_t>(k), g.id});
                                 });
        }
      }
    }
  });

  // Winners: the first pre takes the slot; later finishers within the dupe window pre
  // without having seen it and are nuked as dupes; the others abort.
  // A slot's winner is its attempt of least (hours, group): a minimum under a total order (a
  // group attempts a slot at most once: one stream per range, strictly increasing slots), so it
  // does not depend on the order in which the attempts are read. With more than one thread and
  // many slots, each task takes a range of slots and reads every attempt, keeping those of its
  // range: at 1M sceners the sequential pass's reads of best[] and winner[] (~830,000 slots,
  // 10 MB) missed the cache, on one core.
  const std::size_t n_slots = slots_.size();
  reserve_scratch(race_best_, n_slots);
  reserve_scratch(race_winner_, n_slots);
  race_best_.assign(n_slots, std::numeric_limits<double>::infinity());
  race_winner_.assign(n_slots, -1);
  auto& best = race_best_;
  auto& winner = race_winner_;
  constexpr std::size_t kSplitSlots = 65536;
  // (usable_threads(): a global_control limit, as `--threads` sets, does not change the arena's
  // concurrency)
  const auto threads = static_cast<std::size_t>(std::max(1, usable_threads()));
  const std::size_t parts = n_slots >= kSplitSlots ? threads : 1;
  const auto find_winners = [&](std::size_t part) {
    const auto lo = static_cast<std::int32_t>(n_slots * part / parts);
    const auto hi = static_cast<std::int32_t>(n_slots * (part + 1) / parts);
    for (std::size_t chunk = 0; chunk < group_chunks; ++chunk) {
      for (const auto& at : race_attempts_[chunk]) {
        if (at.slot < lo || at.slot >= hi) continue;
        const auto k = static_cast<std::size_t>(at.slot);
        if (at.hours < best[k] || (at.hours == best[k] && at.group < winner[k])) {
          best[k] = at.hours;
          winner[k] = at.group;
        }
      }
    }
  };
  // (One part, on the calling thread, below kSplitSlots: see the kInline sizes.)
  if (parts == 1) find_winners(0);
  else tbb::parallel_for(std::size_t{0}, parts, find_winners);
  // Dupes: a count (exact in any order), so counted in parallel over the chunks (a reduction, which
  // parallel_for_large() does not cover: the same size rule written out).
  const double window_h = cfg_.races.dupe_window_minutes / 60.0;
  const auto count_dupes = [&](const tbb::blocked_range<std::size_t>& r, std::int64_t acc) {
    for (std::size_t q = r.begin(); q != r.end(); ++q) {
      for (const auto& at : race_attempts_[q]) {
        const auto k = static_cast<std::size_t>(at.slot);
        // (a count without a branch: most attempts are their slot's winner, at random)
        acc += static_cast<std::int64_t>(at.group != winner[k]) & static_cast<std::int64_t>(at.hours <= best[k] + window_h);
      }
    }
    return acc;
  };
  const tbb::blocked_range<std::size_t> all_chunks(0, group_chunks, 1);
  const std::int64_t dupes = listed.size() < kInlineRaceGroups  // on the calling thread: see the kInline sizes
                                 ? count_dupes(all_chunks, 0)
                                 : tbb::parallel_reduce(all_chunks, std::int64_t{0}, count_dupes, std::plus<>());
  t_.dupes += static_cast<double>(dupes);

  // The won slots, over fixed chunks of the slots in parallel. In each chunk: whether each won
  // release leaks (one stream per slot, keyed by its uid, its leak probability fixed in
  // decide()), then the chunk's counts. The day's wins and leaks are counted per group (integer
  // additions, the same in any order), the won releases per category, the leaks that may be a
  // title's first public copy listed in slot order (the market's first-leak records keep that
  // order), and the wholesale slots nobody got as (title, street tick, slots). The chunks are
  // then read in slot order. The groups and their sites are updated after it, group by group.
  // Every update is a count, or recognition_today += c with the same c = recognition_per_release
  // x tier weight for all of a group's wins today (its best tier does not change during the
  // race): the same additions whatever the order, so the result is the one of a per-slot update.
  // Per slot, that update read the Group, its site list and every site: a third of
  // race() at 1M sceners, ~830,000 slots a day (docs/PERFORMANCE.md 10); the pass over the slots
  // itself, on one core, was another 6% of a 2-thread run there (docs/PERFORMANCE.md 16).
  constexpr std::size_t kSlotChunk = 4096;
  race_group_wins_.resize(groups_.size());
  for (const auto gid : alive_groups_) race_group_wins_[static_cast<std::size_t>(gid)] = {0, 0};
  // (The counts per group are atomic only when chunks may run side by side: a locked addition
  // per won slot was a quarter of this pass in the default run on one thread.)
  const bool split = threads > 1 && n_slots >= kInlineSlots;
  const auto count_chunk = [&](std::size_t chunk, std::size_t k0, std::size_t k1) {
    auto& out = race_chunks_[chunk];
    out.scene = 0;
    out.leaks = 0;
    out.scene_by_cat = {};
    out.first_leaks.clear();
    // The chunk's won slots, in slot order, StreamBatch::kLanes at a time: whether each leaks
    // (their streams opened together, docs/PERFORMANCE.md 14: the same draws and values), then
    // their counts.
    StreamBatch streams;
    std::array<std::size_t, StreamBatch::kLanes> won{};  // (written at m < kLanes: a full batch is taken at once)
    const auto take = [&](std::size_t m) {
      streams.fill(cfg_.seed, Purpose::Leak, tick_, m, [&](std::size_t l) { return slots_[won[l]].uid; });
      for (std::size_t l = 0; l < m; ++l) {
        const std::size_t k = won[l];
        Stream rng = streams.stream(l);  // Stream(cfg_.seed, Purpose::Leak, slots_[k].uid, tick_)
        const bool leaks = sample::bernoulli(rng, group_leak_p_[static_cast<std::size_t>(winner[k])]);
        const auto& sl = slots_[k];
        auto& wl = race_group_wins_[static_cast<std::size_t>(winner[k])];
        if (split) {
          std::atomic_ref<std::int32_t>(wl[0]).fetch_add(1, std::memory_order_relaxed);
          std::atomic_ref<std::int32_t>(wl[1]).fetch_add(leaks ? 1 : 0, std::memory_order_relaxed);
        } else {
          wl[0] += 1;
          wl[1] += leaks ? 1 : 0;
        }
        ++out.scene_by_cat[sl.category];
        out.leaks += leaks ? 1 : 0;  // Scene releases that reached public channels
        // (title_leaked_ changes only in the pass below, after every chunk)
        if (leaks && sl.title >= 0 && !title_leaked_[static_cast<std::size_t>(sl.title)])
          out.first_leaks.push_back(static_cast<std::int32_t>(k));
      }
      out.scene += static_cast<std::int64_t>(m);
    };
    // Listed without a branch: about a third of the slots are won, at random, and a per-slot
    // test's branch mispredicted (valgrind --branch-sim: 7.4M mispredictions in this pass of a
    // shortened default run, 1.6M without).
    std::size_t m = 0;
    for (std::size_t k = k0; k != k1; ++k) {
      won[m] = k;
      m += static_cast<std::size_t>(slots_[k].source != Source::P2PPrerelease) & static_cast<std::size_t>(winner[k] >= 0);
      if (m == StreamBatch::kLanes) {
        take(m);
        m = 0;
      }
    }
    if (m > 0) take(m);
    // The wholesale slots nobody got, in slot order: they lie in one range per category. Every
    // slot of a film carries the film's one street date (open_sources() schedules all of its
    // batches with it), so a carried slot's own street_tick is the film's street date.
    out.carry.clear();
    for (std::size_t c = 0; c < kCategories; ++c) {
      const std::size_t key = c * kSources + static_cast<std::size_t>(Source::Wholesale);
      const std::size_t lo = std::max(k0, slot_start_[key]), hi = std::min(k1, slot_start_[key + 1]);
      for (std::size_t k = lo; k < hi; ++k) {
        if (winner[k] >= 0) continue;
        const auto& sl = slots_[k];
        if (!out.carry.empty() && out.carry.back().title == sl.title) ++out.carry.back().slots;
        else out.carry.push_back({sl.title, sl.street_tick, 1});
      }
    }
  };
  // (Unless split, the chunks run one after the other on the calling thread.)
  const std::size_t slot_chunks = parallel_chunks(n_slots, kSlotChunk, split ? kInlineSlots : std::numeric_limits<std::size_t>::max(),
                                                  race_chunks_, count_chunk);
  const auto& sp = cfg_.sceners;
  const auto& tw = cfg_.topsites.tier_weights;
  auto& carry = race_carry_;
  carry.clear();
  std::int64_t scene = 0, leaks = 0, leaks_pre = 0;
  std::array<std::int64_t, kCategories> scene_by_cat{};
  for (std::size_t chunk = 0; chunk < slot_chunks; ++chunk) {
    const auto& out = race_chunks_[chunk];
    scene += out.scene;
    leaks += out.leaks;
    for (int c = 0; c < kCategories; ++c) scene_by_cat[static_cast<std::size_t>(c)] += out.scene_by_cat[static_cast<std::size_t>(c)];
    for (const auto k : out.first_leaks) {
      const auto& sl = slots_[static_cast<std::size_t>(k)];
      if (title_leaked_[static_cast<std::size_t>(sl.title)]) continue;  // an earlier slot of the title leaked today
      record_leak(sl.title, {winner[static_cast<std::size_t>(k)], false, sl.pre_release});
      if (sl.pre_release) ++leaks_pre;
    }
    // A title's unclaimed slots may straddle two chunks: the sequential pass added them up.
    for (const auto& c : out.carry) {
      if (!carry.empty() && carry.back().title == c.title) carry.back().slots = static_cast<std::uint16_t>(carry.back().slots + c.slots);
      else carry.push_back(c);
    }
  }
  t_.scene += static_cast<double>(scene);
  for (int c = 0; c < kCategories; ++c) t_.scene_by_cat[c] += static_cast<double>(scene_by_cat[static_cast<std::size_t>(c)]);
  t_.leaks += static_cast<double>(leaks);
  t_.leaks_pre += static_cast<double>(leaks_pre);
  for (const auto gid : alive_groups_) {
    const auto [wins, leaked] = race_group_wins_[static_cast<std::size_t>(gid)];
    if (wins == 0) continue;
    auto& g = groups_[static_cast<std::size_t>(gid)];
    g.wins_today += wins;
    g.releases += wins;
    g.last_release_tick = tick_;
    const double per_win = sp.recognition_per_release * tw[static_cast<std::size_t>(g.best_tier)];
    for (std::int32_t w = 0; w < wins; ++w) g.recognition_today += per_win;
    for (auto s : g.sites) {
      auto& site = sites_[static_cast<std::size_t>(s)];
      if (!site.live()) continue;
      site.fresh_today += wins;
      site.leaked_today += leaked;
    }
  }
  // Other groups get the carried discs at the street date. (The street date used to be looked
  // up as that of the title's first slot in slots_ order, in a pass over every slot with a hash
  // lookup per slot: the same date, as all of a film's slots carry it.)
  for (const auto& c : carry) schedule(c.street, {c.title, kMovie, Source::Disc, c.slots, c.street});
}

// ---------------------------------------------------------------------------------------------
// Step 4: access market, leaks (in race), P2P releases
// ---------------------------------------------------------------------------------------------

void Simulation::access_market_and_leaks() {
  const auto& ap = cfg_.access;
  double fresh_sum = 0;
  int live = 0;
  for (auto& s : sites_) {
    if (!s.live()) continue;
    s.fresh_ema += (s.fresh_today - s.fresh_ema) / 30.0;
    if (s.fresh_today > 0)
      s.leak_ema += (static_cast<double>(s.leaked_today) / s.fresh_today - s.leak_ema) / 30.0;
    fresh_sum += s.fresh_ema;
    ++live;
  }
  const double fresh_mean = live > 0 ? fresh_sum / live : 0.0;
  for (auto& s : sites_) {
    if (!s.live()) { s.price_usd = 0; continue; }
    // Price responds to the freshness and exclusivity of the site's content and falls with
    // the number of others selling on it (MODEL.md s.3 step 4).
    const double freshness = fresh_mean > 0 ? std::clamp(s.fresh_ema / fresh_mean, 0.1, 5.0) : 1.0;
    const double exclusivity = std::clamp(1.0 - s.leak_ema, 0.05, 1.0);
    s.price_usd = ap.base_price_usd * ap.tier_price[static_cast<std::size_t>(s.tier)] * freshness *
                  exclusivity / (1.0 + ap.competition * std::max(0, s.sellers_prev - 1));
  }
}

void Simulation::p2p_releases() {
  const auto& pp = cfg_.p2p;
  const auto [range, open] = index_slots(false);  // P2P groups never get wholesale discs
  // The day's P2P releases, counted in a local and added once: t_.p2p += 1 per release went
  // through memory, each addition waiting for the store of the one before (18% of this
  // function's samples, docs/PERFORMANCE.md 24). Sums of ones are exact: the same value.
  std::int64_t released = 0;
  StreamBatch blocks;
  for (const auto& p : p2p_) {
    if (!p.alive) continue;
    const int ncat = std::popcount(static_cast<unsigned>(p.categories));
    for (int c = 0; c < kCategories; ++c) {
      if (!((p.categories >> c) & 1u) || open[static_cast<std::size_t>(c)] == 0) continue;
      const auto cz = static_cast<std::size_t>(c);
      // P2P groups step in when the Scene falls short: more recognition and donations for
      // fresh encodes nobody else provides (Le Monde 2020: P2P now publishes almost as much).
      const double shortfall = cat_ema_long_[cz] > 0 ? std::max(0.0, 1.0 - cat_ema_short_[cz] / cat_ema_long_[cz]) : 0.0;
      const double cap = p.capacity * (1.0 + pp.shortfall_response * shortfall) / ncat;
      const double a = cfg_.categories[c].p2p_interest * (1.0 - std::exp(-cap / open[cz]));
      for (int src = 0; src < kSources; ++src) {
        const auto s = static_cast<Source>(src);
        if (s == Source::Wholesale) continue;
        if (s == Source::P2PPrerelease && !p.prerelease) continue;
        const auto [lo, hi] = range[cz][static_cast<std::size_t>(src)];
        if (hi <= lo) continue;
        const double prob = a;  // pre-release leaks compete for the same encoding capacity
        if (prob <= 0) continue;
        const double l1m = prob >= 1.0 ? -1e300 : std::log1p(-prob);
        // The group's attempts on the range: one stream per range, Stream(seed, P2P, entity,
        // tick), its draws taken in batches, bit for bit the loop of
        // sample::attempts_reference() on it (sample::attempts).
        sample::attempts(blocks, cfg_.seed, Purpose::P2P,
                         static_cast<std::uint64_t>(p.id) | (static_cast<std::uint64_t>(c * kSources + src) << 32), tick_,
                         lo, hi, l1m, [&](std::int64_t k) {
                           const auto& sl = slots_[static_cast<std::size_t>(k)];
                           ++released;
                           // A P2P release is public at once.
                           if (sl.title >= 0 && !title_leaked_[static_cast<std::size_t>(sl.title)]) {
                             record_leak(sl.title, {-1, true, sl.pre_release});
                             if (sl.pre_release) t_.leaks_pre += 1;
                           }
                         });
      }
    }
  }
  t_.p2p += static_cast<double>(released);
}

// ---------------------------------------------------------------------------------------------
// Payoffs, learning, imitation and background detection (parallel), then their effects.
// ---------------------------------------------------------------------------------------------

void Simulation::enforcement() {
  constexpr std::size_t kPrefetchAhead = 16;
  const auto& sp = cfg_.sceners;
  const auto& ep = cfg_.enforcement;
  const auto& ap = cfg_.access;
  const auto& eff = sp.role_effort;
  double rec_sum = 0;
  std::int64_t rec_n = 0;
  for (const auto id : active_) {
    const auto i = static_cast<std::size_t>(id);
    if (sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active)) { rec_sum += sc_.recognition[i]; ++rec_n; }
  }
  const double rec_mean = rec_n > 0 ? std::max(1e-9, rec_sum / static_cast<double>(rec_n)) : 1.0;
  double fresh_sum = 0;
  int live = 0;
  for (const auto& s : sites_) if (s.live()) { fresh_sum += s.fresh_ema; ++live; }
  const double fresh_mean = live > 0 ? fresh_sum / live : 0.0;
  const float rec_keep = static_cast<float>(1.0 - sp.recognition_decay_per_day);
  const auto lr = static_cast<float>(sp.learning_rate);
  // Compact copy of the two group fields a releasing member reads (16 bytes per group instead of
  // the 128-byte Group: at 1M sceners the Groups take 14 MB and this load missed the cache for
  // every releasing scener: docs/PERFORMANCE.md 5.2). A releasing scener's group is alive, so
  // listed; other entries are never read.
  group_pay_.resize(groups_.size());
  for (const auto gid : alive_groups_) {
    const auto& g = groups_[static_cast<std::size_t>(gid)];
    group_pay_[static_cast<std::size_t>(gid)] = {g.recognition_today, g.effort};
  }

  // Only the listed sceners' daily flags are reset: every reader of detected, caught and
  // sold_today checks that the scener is Active, and an Active scener is always listed.
  const std::size_t n = active_.size();
  // (Ranges of 512 or more sceners, as in decide(): docs/PERFORMANCE.md 16.)
  const double peer_keep = 1.0 - ep.peer_penalty;
  parallel_for_large(std::size_t{0}, n, std::size_t{512}, kInlineSceners, [&](const tbb::blocked_range<std::size_t>& r) {
    // The arrays' data pointers, read once: the loop stores bytes (flags), which C++ lets alias
    // anything, so the compiler reloaded each vector's pointer from sc_ after every such store
    // (docs/PERFORMANCE.md 20). Locals of the task, whose addresses are never taken, cannot be
    // aliased.
    const std::int32_t* const active = active_.data();
    const std::int32_t* const group = sc_.group.data();
    const std::uint8_t* const role = sc_.role.data();
    const std::uint8_t* const status = sc_.status.data();
    const std::uint8_t* const action = sc_.action.data();
    const float* const skill = sc_.skill.data();
    const float* const alpha = sc_.alpha.data();
    const std::int32_t* const sell_site = sc_.sell_site.data();
    const double* const effort_of_role = eff.data();
    const GroupPay* const pay = group_pay_.data();
    Expectations* const hat = sc_.hat.data();
    float* const recognition = sc_.recognition.data();
    float* const payoff_ema = sc_.payoff_ema.data();
    float* const money_usd = sc_.money_usd.data();
    std::uint16_t* const sold_today = sc_.sold_today.data();
    std::uint8_t* const detected = sc_.detected.data();
    std::uint8_t* const caught = sc_.caught.data();
    // (The scalars too.)
    const float keep_rec = rec_keep, rate = lr;
    const double mean_rec = rec_mean, base_hazard = ep.detection_per_day, vis_weight = ep.visibility_weight,
                 sell_mult = ep.sell_multiplier, dormant_mult = ep.dormant_factor;
    // The detection streams' first blocks, StreamBatch::kLanes sceners at a time (docs/PERFORMANCE.md 14).
    StreamBatch detection;
    for (std::size_t k = r.begin(); k != r.end(); ++k) {
      const std::size_t lane = (k - r.begin()) % StreamBatch::kLanes;
      if (lane == 0)
        detection.fill(cfg_.seed, Purpose::Detection, tick_, r.end() - k, [&](std::size_t l) { return active[k + l]; });
      // The group's pay entry of the scener kPrefetchAhead places on is fetched now: the load
      // missed the cache for most releasing sceners at 1M (111,000 groups, 1.8 MB) and the loop
      // body is too long for the core to overlap it with the next iterations' own
      // (docs/PERFORMANCE.md 14). A prefetch changes no value.
      if (k + kPrefetchAhead < r.end()) {
        const auto ia = static_cast<std::size_t>(active[k + kPrefetchAhead]);
        const auto ga = group[ia];
        __builtin_prefetch(pay + (ga < 0 ? 0 : ga));
        __builtin_prefetch(hat + ia);  // (its address waits for the action otherwise)
      }
      const auto i = static_cast<std::size_t>(active[k]);
      detected[i] = 0;
      caught[i] = 0;
      sold_today[i] = 0;
      if (status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
      const auto act = action[i];
      if (act == kRetire) continue;
      double r_real = 0, m_real = 0;
      bool caught_selling = false;
      if (act == kRelease) {
        const auto& g = pay[static_cast<std::size_t>(group[i])];
        if (g.effort > 0) r_real = g.recognition_today * skill[i] * effort_of_role[role[i]] / g.effort;
      } else if (act == kSell) {
        Stream rng(cfg_.seed, Purpose::AccessMarket, i, tick_);
        const auto& site = sites_[static_cast<std::size_t>(sell_site[i])];
        const double demand = fresh_mean > 0 ? std::clamp(site.fresh_ema / fresh_mean, 0.1, 5.0) : 1.0;
        const auto sold = std::min<std::uint64_t>(1000, sample::poisson(rng, ap.buyers_per_seller_day * demand));
        sold_today[i] = static_cast<std::uint16_t>(sold);
        const double usd = static_cast<double>(sold) * site.price_usd;
        money_usd[i] += static_cast<float>(usd);
        m_real = usd * sp.utility_per_usd;
        // The code of honour forbids selling: peers may catch the seller (ban, lost recognition).
        if (sample::bernoulli(rng, ep.peer_catch)) {
          caught_selling = true;
          caught[i] = 1;
          r_real = -ep.peer_penalty * recognition[i];
        }
      }
      if (act < kLearnedActions) {
        // Reinforcement learning of expected payoffs (Erev & Roth 1998; Camerer & Ho 1999, EWA
        // with no foregone-payoff weight): only the chosen action's expectation moves.
        auto& e = hat[i][act];
        e.r += rate * (static_cast<float>(r_real) - e.r);
        e.m += rate * (static_cast<float>(m_real) - e.m);
      }
      const double a = alpha[i];
      payoff_ema[i] += 0.05f * (static_cast<float>(a * r_real + (1 - a) * m_real) - payoff_ema[i]);
      float rec = recognition[i] * keep_rec + static_cast<float>(std::max(0.0, r_real));
      if (caught_selling) rec *= static_cast<float>(peer_keep);
      recognition[i] = rec;
      // Background detection: the hazard rises with visibility and with selling (money trail).
      // Visibility saturates (R / (R + mean R) < 1): fame draws attention, but a scener's
      // hazard cannot grow without bound with a heavy-tailed recognition stock.
      const double vis = rec / (rec + mean_rec);
      double h = base_hazard * (1.0 + vis_weight * vis);
      if (act == kSell) h *= sell_mult;
      if (act == kDormant) h *= dormant_mult;
      // The first uniform() of Stream(cfg_.seed, Purpose::Detection, i, tick_), read from its block.
      detected[i] = detection.uniform(lane, 0) < h ? 1 : 0;
    }
  });

  // Effects on shared state, in id order (deterministic whatever the thread count). What each
  // scener contributes is found in parallel over fixed chunks of the Active list, each chunk
  // listing its sellers and its imitation pairs in id order; the lists are then applied chunk
  // by chunk, i.e. in id order, as a sequential scan of every Active scener did (29% of
  // enforcement() at 1M sceners: docs/PERFORMANCE.md 10). Sellers' effects (sites, tallies) and
  // imitation (a scener's own expectations) touch different state, so applying all of the
  // former and then all of the latter is the interleaved order's result. Retirement and the
  // peer ban touch only the scener itself and are done in the chunk pass.
  const double keep = 1.0 - 1.0 / ap.account_days;
  for (auto& s : sites_) s.sold_accounts *= keep;
  const std::size_t chunks = parallel_chunks(n, active_chunk(n), kInlineSceners, enf_chunks_, [&](std::size_t c, std::size_t k0, std::size_t k1) {
    auto& out = enf_chunks_[c];
    out.sellers.clear();
    out.imitations.clear();
    out.imitators.clear();
    out.retired = 0;
    out.left.clear();
    for (std::size_t k = k0; k < k1; ++k) {
      const auto i = static_cast<std::size_t>(active_[k]);
      if (sc_.status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
      if (sc_.action[i] == kRetire) {
        if (sc_.group[i] >= 0) out.left.push_back(static_cast<std::int32_t>(i));  // (logged below: see note_member())
        sc_.status[i] = static_cast<std::uint8_t>(ScenerStatus::Retired);
        ++out.retired;
        continue;
      }
      if (sc_.sold_today[i] > 0) out.sellers.push_back(static_cast<std::int32_t>(i));
      if (sc_.caught[i]) sc_.ban_until[i] = tick_ + static_cast<std::int32_t>(cfg_.enforcement.peer_ban_days);
      if (sc_.imitate[i] && sc_.group[i] >= 0) out.imitators.push_back(static_cast<std::int32_t>(i));
    }
    // Imitation of a more successful group peer (social learning), after the scan: the peer and
    // the comparison read only payoffs, group ids and the member index, which nothing changes
    // until the next decide(). StreamBatch::kLanes imitators at a time, each step for all of
    // them before the next: the member ranges, then the peers (their streams opened together,
    // docs/PERFORMANCE.md 14: the same draws), then the payoffs. One imitator after the other,
    // each of the three loads waited for the one before, and at 1M sceners each missed the
    // cache (docs/PERFORMANCE.md 22).
    const auto& imitators = out.imitators;
    StreamBatch streams;
    std::array<std::span<const std::int32_t>, StreamBatch::kLanes> peers;
    std::array<std::int32_t, StreamBatch::kLanes> peer{};
    for (std::size_t q0 = 0; q0 < imitators.size(); q0 += StreamBatch::kLanes) {
      const std::size_t m = std::min(StreamBatch::kLanes, imitators.size() - q0);
      for (std::size_t l = 0; l < m; ++l) peers[l] = members_of(sc_.group[static_cast<std::size_t>(imitators[q0 + l])]);
      streams.fill(cfg_.seed, Purpose::Learning, tick_, m, [&](std::size_t l) { return imitators[q0 + l]; });
      for (std::size_t l = 0; l < m; ++l) {
        peer[l] = -1;
        if (peers[l].size() <= 1) continue;
        Stream rng = streams.stream(l);  // Stream(cfg_.seed, Purpose::Learning, imitator, tick_)
        peer[l] = peers[l][sample::uniform_index(rng, peers[l].size())];
        __builtin_prefetch(sc_.payoff_ema.data() + peer[l]);
      }
      for (std::size_t l = 0; l < m; ++l) {
        const auto i = static_cast<std::size_t>(imitators[q0 + l]);
        if (peer[l] < 0) continue;
        const auto j = static_cast<std::size_t>(peer[l]);
        if (j != i && sc_.payoff_ema[j] > sc_.payoff_ema[i])
          out.imitations.push_back({static_cast<std::int32_t>(i), static_cast<std::int32_t>(j)});
      }
    }
  });
  std::int64_t retired = 0;
  // (The day's tallies in locals, written back once: the same additions in the same order, which
  // through t_ waited for each other's stores, as the sites' stores may alias them.)
  double sold_new = t_.sold_new, money_usd = t_.money_usd;
  for (std::size_t c = 0; c < chunks; ++c) {
    const auto& out = enf_chunks_[c];
    retired += out.retired;
    // The retired members, with the key they had (Active, in their group), in id order.
    if (members_built_)
      for (const auto id : out.left) member_log_.push_back({id, sc_.group[static_cast<std::size_t>(id)]});
    for (const auto id : out.sellers) {
      const auto i = static_cast<std::size_t>(id);
      auto& site = sites_[static_cast<std::size_t>(sc_.sell_site[i])];
      site.sold_accounts += sc_.sold_today[i];
      sold_new += sc_.sold_today[i];
      money_usd += sc_.sold_today[i] * site.price_usd;
    }
  }
  t_.sold_new = sold_new;
  t_.money_usd = money_usd;
  t_.retired += static_cast<double>(retired);
  // Imitation moves a scener's expectations towards its peer's, as they are at this point of
  // the id-order scan: a peer with a smaller id has already imitated (applied first here too).
  const auto w = static_cast<float>(sp.imitation_weight);
  for (std::size_t c = 0; c < chunks; ++c) {
    for (const auto& [id, peer] : enf_chunks_[c].imitations) {
      const auto i = static_cast<std::size_t>(id);
      const auto j = static_cast<std::size_t>(peer);
      for (int k = 0; k < kLearnedActions; ++k) {
        sc_.hat[i][k].r += w * (sc_.hat[j][k].r - sc_.hat[i][k].r);
        sc_.hat[i][k].m += w * (sc_.hat[j][k].m - sc_.hat[i][k].m);
      }
    }
  }
  for (const auto id : active_)
    if (sc_.detected[static_cast<std::size_t>(id)] && sc_.status[static_cast<std::size_t>(id)] == static_cast<std::uint8_t>(ScenerStatus::Active))
      arrest(id, "background detection");

  // Scheduled operations of today.
  for (auto k : op_order_) {
    const auto& op = cfg_.enforcement.operations[static_cast<std::size_t>(k)];
    if (tick_of(op.date) == tick_) run_operation(op);
  }
}

void Simulation::arrest(std::int32_t scener, const std::string& why) {
  const auto i = static_cast<std::size_t>(scener);
  note_member(i);
  sc_.status[i] = static_cast<std::uint8_t>(ScenerStatus::Arrested);
  ++arrested_total_;
  t_.arrested += 1;
  if (tick_ >= report_first_)
    events_.add(date_of(tick_), "arrest", fmt::format("scener:{}", scener),
                fmt::format("{}; role={}; group={}", why, kRoleNames[sc_.role[i]], sc_.group[i]));
  const auto& ep = cfg_.enforcement;
  // Group peers fear they are next.
  if (sc_.group[i] >= 0) {
    for (auto k : members_of(sc_.group[i])) sc_.chill[static_cast<std::size_t>(k)] += static_cast<float>(ep.group_arrest_chill);
  }
  // An arrested operator or seller exposes the site.
  Stream rng(cfg_.seed, Purpose::Detection, kKeyGlobal | i, tick_);
  const auto exposed = sc_.site[i] >= 0 ? sc_.site[i] : sc_.sell_site[i];
  if (exposed >= 0 && sites_[static_cast<std::size_t>(exposed)].status != SiteStatus::Seized &&
      sample::bernoulli(rng, ep.expose_site))
    seize(exposed, fmt::format("exposed by arrest of scener:{}", scener));
}

void Simulation::seize(std::int32_t site, const std::string& why, int servers) {
  auto& s = sites_[static_cast<std::size_t>(site)];
  s.status = SiteStatus::Seized;
  s.servers_seized = servers < 0 ? s.servers : servers;
  s.sold_accounts = 0;
  ++seized_total_;
  if (tick_ >= report_first_)
    events_.add(date_of(tick_), "seizure", fmt::format("site:{}", site),
                fmt::format("{}; tier={}; country={}; servers={}", why, s.tier + 1,
                            cfg_.topsites.countries[static_cast<std::size_t>(s.country)], s.servers_seized));
}

void Simulation::go_dark(std::int32_t site, double days_mean, double never_return, Stream& rng) {
  auto& s = sites_[static_cast<std::size_t>(site)];
  s.status = SiteStatus::Dark;
  const bool never = sample::bernoulli(rng, never_return);
  const auto days = 1 + static_cast<std::int32_t>(sample::exponential(rng, 1.0 / std::max(1.0, days_mean)));
  s.reopen_tick = never ? -2 : tick_ + days;
  if (tick_ >= report_first_)
    events_.add(date_of(tick_), "site_dark", fmt::format("site:{}", site),
                never ? std::string("precaution; does not return") : fmt::format("precaution; back in {} days", days));
}

void Simulation::run_operation(const Operation& op) {
  OperationOutcome out;
  out.name = op.name;
  out.date = op.date;
  const auto op_key = kKeyOperation | static_cast<std::uint64_t>(op_outcomes_.size());
  Stream rng(cfg_.seed, Purpose::Operation, op_key, tick_);
  const int n_tiers = static_cast<int>(cfg_.topsites.tier_sizes.size());

  std::vector<std::int32_t> target_groups;
  for (const auto& name : op.groups) {
    const auto id = named_group_id(name);
    if (id >= 0) target_groups.push_back(id);
  }
  // Score every standing site by the targeting rule; random jitter breaks ties.
  std::vector<std::pair<double, std::int32_t>> cand;
  for (const auto& s : sites_) {
    if (s.status == SiteStatus::Seized || s.status == SiteStatus::Closed) continue;
    double score = 0;
    const double top = n_tiers - s.tier;
    if (op.target == "named_groups") {
      bool hosts = false;
      for (auto g : s.groups) hosts = hosts || std::find(target_groups.begin(), target_groups.end(), g) != target_groups.end();
      score = (hosts ? 1000.0 : 0.0) + top;
    } else if (op.target == "top_tiers") {
      score = top;
    } else if (op.target == "sellers") {
      score = s.sold_accounts + 10.0 * s.sellers;
    } else if (op.target == "suppliers") {
      for (auto g : s.groups) score += groups_[static_cast<std::size_t>(g)].fraud ? 100.0 : 0.0;
      score += top;
    }
    score += sample::uniform(rng, 0.0, 1.0);
    cand.emplace_back(score, s.id);
  }
  std::sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  // International coordination: the countries hosting the most-targeted sites act.
  std::vector<double> country_score(cfg_.topsites.countries.size(), 0.0);
  for (const auto& [score, id] : cand) country_score[static_cast<std::size_t>(sites_[static_cast<std::size_t>(id)].country)] += score;
  std::vector<int> order(country_score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return country_score[static_cast<std::size_t>(a)] > country_score[static_cast<std::size_t>(b)]; });
  std::vector<bool> acts(country_score.size(), false);
  for (std::size_t k = 0; k < order.size() && static_cast<std::int64_t>(k) < op.countries; ++k) acts[static_cast<std::size_t>(order[k])] = true;

  // Servers are seized site by site in the order of the targeting score; the last site may
  // lose only some of its servers, which is enough to take it down. So an operation seizes
  // exactly the servers it names whenever the acting countries host that many.
  std::int64_t budget = op.servers;
  std::vector<bool> country_hit(country_score.size(), false);
  std::vector<std::int32_t> seized;
  for (const auto& [score, id] : cand) {
    if (budget <= 0) break;
    auto& s = sites_[static_cast<std::size_t>(id)];
    if (!acts[static_cast<std::size_t>(s.country)]) continue;
    const auto take = static_cast<int>(std::min<std::int64_t>(s.servers, budget));
    budget -= take;
    out.servers_seized += take;
    out.sites_seized += 1;
    country_hit[static_cast<std::size_t>(s.country)] = true;
    seize(id, fmt::format("operation {}", op.name), take);
    seized.push_back(id);
  }
  out.countries = static_cast<int>(std::count(country_hit.begin(), country_hit.end(), true));

  // Arrests: members of the named target groups, then up to `arrests` others by the rule.
  for (auto g : target_groups)
    for (const auto id : active_) {
      const auto i = static_cast<std::size_t>(id);
      if (sc_.group[i] == g && sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active)) {
        arrest(id, fmt::format("operation {}", op.name));
        ++out.arrests;
      }
    }
  std::vector<std::pair<double, std::int32_t>> suspects;
  for (const auto id : active_) {
    const auto i = static_cast<std::size_t>(id);
    if (sc_.status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
    double score = sample::uniform(rng, 0.0, 1.0);
    const bool runs_seized = sc_.site[i] >= 0 && std::find(seized.begin(), seized.end(), sc_.site[i]) != seized.end();
    if (runs_seized) score += 100;
    if (op.target == "sellers" && sc_.action[i] == kSell) score += 50;
    if (op.target == "suppliers" && sc_.role[i] == static_cast<std::uint8_t>(Role::Supplier) && sc_.group[i] >= 0 &&
        groups_[static_cast<std::size_t>(sc_.group[i])].fraud) score += 50;
    if (op.target == "top_tiers" && sc_.group[i] >= 0 && groups_[static_cast<std::size_t>(sc_.group[i])].best_tier == 0) score += 20;
    if (score > 1.0 || op.target == "random") suspects.emplace_back(score, static_cast<std::int32_t>(i));
  }
  std::sort(suspects.begin(), suspects.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (std::size_t k = 0; k < suspects.size() && static_cast<std::int64_t>(k) < op.arrests; ++k) {
    arrest(suspects[k].second, fmt::format("operation {}", op.name));
    ++out.arrests;
  }

  // Chilling effect: everyone's perceived risk jumps, most for those tied to seized sites.
  for (const auto id : active_) {
    const auto i = static_cast<std::size_t>(id);
    if (sc_.status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
    double extra = 0;
    if (sc_.group[i] >= 0)
      for (auto s : groups_[static_cast<std::size_t>(sc_.group[i])].sites)
        if (std::find(seized.begin(), seized.end(), s) != seized.end()) { extra = op.chill; break; }
    sc_.chill[i] += static_cast<float>(op.chill + extra);
  }
  // Precaution: other sites go dark for a while (TorrentFreak 2020).
  for (auto& s : sites_) {
    if (!s.live()) continue;
    Stream drng(cfg_.seed, Purpose::Darkness, kKeySite | static_cast<std::uint64_t>(s.id), tick_);
    if (sample::bernoulli(drng, op.dark_share)) {
      go_dark(s.id, op.dark_days_mean, op.dark_never_return, drng);
      ++out.sites_dark;
    }
  }
  events_.add(op.date, "operation", op.name,
              fmt::format("servers_seized={}; sites_seized={}; countries={}; arrests={}; sites_dark={}",
                          out.servers_seized, out.sites_seized, out.countries, out.arrests, out.sites_dark));
  op_outcomes_.push_back(out);
}

// ---------------------------------------------------------------------------------------------
// Step 6: structural change -- the recovery engine
// ---------------------------------------------------------------------------------------------

std::span<const std::int32_t> Simulation::members_of(std::int32_t gid) const {
  const auto g = static_cast<std::size_t>(gid);
  if (gid < 0 || g + 1 >= member_start_.size()) return {};
  return {member_ids_.data() + member_start_[g], static_cast<std::size_t>(member_start_[g + 1] - member_start_[g])};
}

void Simulation::dissolve(std::int32_t gid, std::int32_t heir) {
  auto& g = groups_[static_cast<std::size_t>(gid)];
  g.alive = false;
  g.dissolved_tick = tick_;
  t_.groups_dissolved += 1;
  for (auto s : g.sites) {
    auto& site = sites_[static_cast<std::size_t>(s)];
    site.groups.erase(std::remove(site.groups.begin(), site.groups.end(), gid), site.groups.end());
  }
  g.sites.clear();
  for (auto i : members_of(gid))
    if (sc_.group[static_cast<std::size_t>(i)] == gid) {
      note_member(static_cast<std::size_t>(i));
      sc_.group[static_cast<std::size_t>(i)] = heir;
    }
  if (tick_ >= report_first_)
    events_.add(date_of(tick_), "group_dissolved", g.named ? named_group_name(g) : fmt::format("group:{}", gid),
                fmt::format("releases={}; lived={} days{}", g.releases, tick_ - g.founded_tick,
                            heir >= 0 ? fmt::format("; merged into group:{}", heir) : std::string()));
}

double Simulation::scene_shortfall() const {
  return releases_ema_long_ > 0 ? std::max(0.0, 1.0 - releases_ema_short_ / releases_ema_long_) : 0.0;
}

void Simulation::compact_active() {
  std::erase_if(active_, [&](std::int32_t i) {
    return sc_.status[static_cast<std::size_t>(i)] != static_cast<std::uint8_t>(ScenerStatus::Active);
  });
}

void Simulation::rebuild_members_full(LargeVector<std::int32_t>& start, LargeVector<std::int32_t>& ids,
                                      LargeVector<std::int32_t>& fill) const {
  // Members by group (counting sort), in id order within each group. (Counting and placing in
  // parallel over parts of the Active list was slower at 1M sceners: the placements scatter over
  // the whole index from a cursor array per part: docs/PERFORMANCE.md 12.)
  const auto ng = groups_.size();
  start.assign(ng + 1, 0);
  for (const auto id : active_) {
    const auto i = static_cast<std::size_t>(id);
    if (sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active) && sc_.group[i] >= 0)
      ++start[static_cast<std::size_t>(sc_.group[i]) + 1];
  }
  for (std::size_t g = 0; g < ng; ++g) start[g + 1] += start[g];
  ids.resize(static_cast<std::size_t>(start[ng]));
  fill.assign(start.begin(), start.end() - 1);
  for (const auto id : active_) {
    const auto i = static_cast<std::size_t>(id);
    if (sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active) && sc_.group[i] >= 0)
      ids[static_cast<std::size_t>(fill[static_cast<std::size_t>(sc_.group[i])]++)] = id;
  }
}

void Simulation::rebuild_members() {
  const auto ng = groups_.size();
  if (!members_built_) {
    // The first build: whole, and every group's count from it.
    rebuild_members_full(member_start_, member_ids_, member_fill_);
    // Each group writes only its own count: in parallel (a sweep of every 128-byte Group, ~111,000
    // at 1M sceners, cache misses all the way).
    parallel_for_large(std::size_t{0}, ng, std::size_t{1024}, kInlineGroups, [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t g = r.begin(); g != r.end(); ++g) groups_[g].members = member_start_[g + 1] - member_start_[g];
    });
    members_built_ = true;
    member_log_.clear();
    member_groups_touched_.clear();
    return;
  }
  // After it, the index is updated from the day's changes: every place that changes a scener's
  // group or status logs the scener first (note_member()), with the key it had. The counting
  // sort it replaces placed every Active scener at one of ~111,000 cursors at 1M sceners, 5.3 ms
  // a day on one core (docs/PERFORMANCE.md 21.2), for ~3,300 sceners whose key had changed
  // (~3,100 groups touched; docs/PERFORMANCE.md 25). The result is the counting sort's, entry
  // for entry (verify_member_index()).
  //
  // (1) Net changes: the key at the last rebuild (a scener's first entry; the log is in the
  // order of the changes and the sort is stable) against the key now. Leavers and joiners as
  // (group << 32) | id, sorted: by group, then in id order.
  std::stable_sort(member_log_.begin(), member_log_.end(), [](const MemberChange& a, const MemberChange& b) { return a.id < b.id; });
  const auto code = [](std::int32_t g, std::int32_t id) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(g)) << 32) | static_cast<std::uint32_t>(id);
  };
  member_out_.clear();
  member_in_.clear();
  for (std::size_t k = 0; k < member_log_.size();) {
    const auto id = member_log_[k].id;
    const auto was = member_log_[k].old_key;
    while (k < member_log_.size() && member_log_[k].id == id) ++k;
    const auto now = member_key(static_cast<std::size_t>(id));
    if (now == was) continue;
    if (was >= 0) member_out_.push_back(code(was, id));
    if (now >= 0) member_in_.push_back(code(now, id));
  }
  member_log_.clear();
  std::sort(member_out_.begin(), member_out_.end());
  std::sort(member_in_.begin(), member_in_.end());
  // The groups whose range changes, or whose count a merger changed, in id order.
  auto& affected = member_affected_;
  affected.assign(member_groups_touched_.begin(), member_groups_touched_.end());
  member_groups_touched_.clear();
  for (const auto c : member_out_) affected.push_back(static_cast<std::int32_t>(c >> 32));
  for (const auto c : member_in_) affected.push_back(static_cast<std::int32_t>(c >> 32));
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());

  // (2) The new index: the ranges between affected groups are copied (their starts shift by the
  // changes before them), each affected group's range is its old one without its leavers, merged
  // with its joiners. Groups founded since the last rebuild had no members then.
  const std::size_t ng_old = member_start_.size() - 1;
  const auto old_start = [&](std::size_t g) { return static_cast<std::size_t>(member_start_[std::min(g, ng_old)]); };
  const auto total = static_cast<std::size_t>(member_start_[ng_old]);
  const auto size_after = static_cast<std::ptrdiff_t>(total) + static_cast<std::ptrdiff_t>(member_in_.size()) -
                          static_cast<std::ptrdiff_t>(member_out_.size());
  auto& start = member_start_next_;
  auto& ids = member_ids_next_;
  start.resize(ng + 1);
  ids.resize(static_cast<std::size_t>(size_after));
  std::size_t out_k = 0, in_k = 0;  // cursors in member_out_ and member_in_
  std::size_t g0 = 0;               // first group not yet written
  std::int64_t shift = 0;           // new start - old start, for the groups after the last affected one
  std::int32_t* const dst = ids.data();
  const std::int32_t* const src = member_ids_.data();
  for (std::size_t a = 0; a <= affected.size(); ++a) {
    const std::size_t g = a < affected.size() ? static_cast<std::size_t>(affected[a]) : ng;
    // Groups g0 .. g-1: unchanged ranges, shifted.
    for (std::size_t h = g0; h < g; ++h) start[h] = static_cast<std::int32_t>(static_cast<std::int64_t>(old_start(h)) + shift);
    if (g > g0) std::copy(src + old_start(g0), src + old_start(g), dst + (static_cast<std::int64_t>(old_start(g0)) + shift));
    if (g == ng) break;
    // Group g: its old members but the leavers, and the joiners, in id order.
    const auto new_begin = static_cast<std::int64_t>(old_start(g)) + shift;
    start[g] = static_cast<std::int32_t>(new_begin);
    std::int32_t* w = dst + new_begin;
    const std::int32_t* r = src + old_start(g);
    const std::int32_t* const r_end = src + old_start(g + 1);
    const auto in_group = [&](const std::vector<std::uint64_t>& v, std::size_t k) {
      return k < v.size() && static_cast<std::size_t>(v[k] >> 32) == g;
    };
    while (r != r_end || in_group(member_in_, in_k)) {
      // The next of the old members (skipping leavers: both lists are in id order) and of the joiners.
      if (r != r_end && in_group(member_out_, out_k) && static_cast<std::int32_t>(member_out_[out_k] & 0xffffffffu) == *r) {
        ++r;
        ++out_k;
        continue;
      }
      if (r != r_end && (!in_group(member_in_, in_k) || *r < static_cast<std::int32_t>(member_in_[in_k] & 0xffffffffu))) {
        *w++ = *r++;
      } else {
        *w++ = static_cast<std::int32_t>(member_in_[in_k] & 0xffffffffu);
        ++in_k;
      }
    }
    const auto count = w - (dst + new_begin);
    shift += count - static_cast<std::int64_t>(old_start(g + 1) - old_start(g));
    groups_[g].members = static_cast<int>(count);
    g0 = g + 1;
  }
  start[ng] = static_cast<std::int32_t>(size_after);
  if (out_k != member_out_.size() || in_k != member_in_.size() || static_cast<std::int64_t>(total) + shift != size_after)
    throw ModelError(fmt::format("member index update on {} (tick {}): a logged leaver was not in its group's range "
                                 "(a change of group or status made without note_member())",
                                 date_of(tick_).iso(), tick_));
  std::swap(member_start_, member_start_next_);
  std::swap(member_ids_, member_ids_next_);

#ifdef PIRACY_SEATBELTS
  constexpr bool kVerify = true;
#else
  constexpr bool kVerify = false;
#endif
  if (kVerify || verify_members_) {
    LargeVector<std::int32_t> full_start, full_ids, fill;
    rebuild_members_full(full_start, full_ids, fill);
    if (full_start != member_start_ || full_ids != member_ids_)
      throw ModelError(fmt::format("member index on {} (tick {}) differs from its counting sort", date_of(tick_).iso(), tick_));
    for (std::size_t g = 0; g < ng; ++g)
      if (groups_[g].members != full_start[g + 1] - full_start[g])
        throw ModelError(fmt::format("group:{} on {} (tick {}): members {} where its index lists {}", g,
                                     date_of(tick_).iso(), tick_, groups_[g].members, full_start[g + 1] - full_start[g]));
  }
}

std::vector<double> Simulation::tier_cuts() const {
  // Cumulative share of sites down to each tier: tier k accepts groups whose recognition
  // rank is in that top share.
  std::vector<double> cut;
  double total = 0, cum = 0;
  for (auto n : cfg_.topsites.tier_sizes) total += static_cast<double>(n);
  for (auto n : cfg_.topsites.tier_sizes) { cum += static_cast<double>(n); cut.push_back(total > 0 ? cum / total : 1.0); }
  cut.back() = 1.0;
  return cut;
}

std::int64_t Simulation::affiliate() {
  const auto& gp = cfg_.groups;
  const auto& tp = cfg_.topsites;
  // (h) Affiliation: groups without enough live sites apply; a site of tier k accepts groups
  // in the top share of recognition that its rank in the pyramid implies (better-ranked sites
  // accept better-recognized groups).
  const auto tier_cut = tier_cuts();
  auto& open_by_tier = aff_open_by_tier_;
  open_by_tier.resize(tp.tier_sizes.size());
  for (auto& v : open_by_tier) v.clear();
  // Each site's state in one byte, for the search below: it read the 112-byte Topsite of every
  // site on every listed group's list, and at 1M sceners (~14,000 sites, 1.6 MB) those reads
  // missed the cache (most of the search's samples in `perf annotate`: docs/PERFORMANCE.md 22).
  enum : std::uint8_t { kSiteLive = 0, kSiteDark = 1, kSiteGone = 2 };
  auto& site_state = aff_site_state_;
  site_state.resize(sites_.size());
  for (const auto& s : sites_) {
    const bool gone = s.status == SiteStatus::Seized || s.status == SiteStatus::Closed;
    site_state[static_cast<std::size_t>(s.id)] = s.live() ? kSiteLive : gone ? kSiteGone : kSiteDark;
    if (s.live() && static_cast<std::int64_t>(s.groups.size()) < tp.groups_per_site) open_by_tier[static_cast<std::size_t>(s.tier)].push_back(s.id);
  }

  // Which groups search today, in parallel: each group forgets its sites that are gone for good,
  // counts its live ones and, if it has a home, draws whether it looks around. None of this reads
  // what the placements below change (the sites' group lists and the open candidates), so it is
  // the same whatever the order; the placements stay sequential in id order (a placement fills a
  // site that a later group might have picked). At 1M sceners the per-group checks are about a
  // quarter of affiliate() (docs/PERFORMANCE.md 10).
  enum : std::uint8_t { kNoSearch = 0, kSearchHomeless = 1, kSearchHomed = 2 };
  const auto& listed = alive_groups_;
  aff_search_.resize(listed.size());
  const bool may_search = gp.affiliation_enabled || initializing_;
  const auto search = [&] {
    parallel_for_large(std::size_t{0}, listed.size(), std::size_t{512}, kInlineGroups, [&](const tbb::blocked_range<std::size_t>& r) {
      const std::uint8_t* const state = site_state.data();
      for (std::size_t k = r.begin(); k != r.end(); ++k) {
        // The site list of the group kPrefetchAhead places on is fetched now: each list is a block
        // of its own on the heap, and at 1M sceners (~111,000 groups) its load missed the cache.
        constexpr std::size_t kPrefetchAhead = 8;
        if (k + kPrefetchAhead < r.end()) {
          const auto& ahead = groups_[static_cast<std::size_t>(listed[k + kPrefetchAhead])].sites;
          if (!ahead.empty()) __builtin_prefetch(ahead.data());
        }
        auto& g = groups_[static_cast<std::size_t>(listed[k])];
        aff_search_[k] = kNoSearch;
        if (!g.alive) continue;
        // Forget sites that are gone for good.
        std::erase_if(g.sites, [&](std::int32_t s) { return state[static_cast<std::size_t>(s)] == kSiteGone; });
        int live = 0;
        for (auto s : g.sites) live += state[static_cast<std::size_t>(s)] == kSiteLive ? 1 : 0;
        if (live >= gp.max_affiliations || static_cast<std::int64_t>(g.sites.size()) >= gp.max_affiliations + 2) continue;
        if (!may_search) continue;
        if (live > 0) {
          Stream arng(cfg_.seed, Purpose::Affiliation, static_cast<std::uint64_t>(g.id), tick_);
          if (!sample::bernoulli(arng, gp.affiliation_search_rate)) continue;  // groups with a home look around slowly
        }
        aff_search_[k] = live > 0 ? kSearchHomed : kSearchHomeless;
      }
    });
  };

  // A group of recognition rank r (0-based, in the total order of (recognition desc, id asc))
  // among the N alive groups is at share (r + 1) / N of the top; tier k accepts it when that share
  // is <= tier_cut[k]. The share is monotone in r, so tier k accepts exactly the first K_k ranks,
  // i.e. the groups that come before the group of rank K_k: found by selection (nth_element,
  // O(N) per tier) instead of a full sort (O(N log N): ~40% of affiliate() at 1M sceners), and
  // only on days when some group searches. (recognition, id) is a total order (ids are unique),
  // so the group at each position is unique: the result does not depend on the algorithm.
  const auto better = [](const std::pair<double, std::int32_t>& a, const std::pair<double, std::int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const std::size_t tiers = open_by_tier.size();
  // accept_before[k]: tier k accepts the groups that come before this key; {+inf, -1} = none
  // (K_k = 0); accepts_all[k]: K_k = N.
  std::vector<std::pair<double, std::int32_t>> accept_before(tiers, {std::numeric_limits<double>::infinity(), -1});
  std::vector<char> accepts_all(tiers, 0);
  const auto rank = [&] {
    auto& ranked = aff_ranked_;
    ranked.clear();
    for (const auto gid : alive_groups_)
      if (const auto& g = groups_[static_cast<std::size_t>(gid)]; g.alive) ranked.emplace_back(g.recognition, g.id);
    const std::size_t n_ranked = ranked.size();
    const auto n_accepted = [&](double cut) {  // number of ranks r with (r + 1.0) / N <= cut
      std::size_t lo = 0, hi = n_ranked;
      while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        if ((static_cast<double>(mid) + 1.0) / static_cast<double>(n_ranked) <= cut) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    std::vector<std::pair<std::size_t, std::size_t>> by_k;  // (K_k, k), to select from the largest K down
    for (std::size_t k = 0; k < tiers; ++k) {
      const std::size_t kk = n_accepted(tier_cut[k]);
      if (kk >= n_ranked) accepts_all[k] = 1;
      else if (kk > 0) by_k.emplace_back(kk, k);
    }
    std::sort(by_k.begin(), by_k.end(), std::greater<>());
    std::size_t limit = n_ranked;  // ranked[0, limit) holds the top `limit` groups
    for (const auto& [kk, k] : by_k) {
      std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(kk),
                       ranked.begin() + static_cast<std::ptrdiff_t>(limit), better);
      accept_before[k] = ranked[kk];
      limit = kk;
    }
  };
  // The ranking reads the groups' recognition and ids, which the search pass does not write (it
  // writes the groups' site lists and aff_search_): with two threads it is made alongside that
  // pass, before it is known whether a group searches (at 1M sceners some group searches every
  // day, and the ranking took ~2.5 ms of sequential time a day: docs/PERFORMANCE.md 12); with one
  // thread, or fewer listed groups than kInlineGroups (see the kInline sizes), only when some
  // group searches.
  if (usable_threads() > 1 && listed.size() >= kInlineGroups) {
    tbb::parallel_invoke(search, rank);
  } else {
    search();
    if (std::any_of(aff_search_.begin(), aff_search_.end(), [](std::uint8_t v) { return v != kNoSearch; })) rank();
  }

  std::int64_t unplaced = 0;
  // The searching groups' places in the list, so that the loop below can fetch the Group (both
  // of its cache lines) and its site list a few groups ahead: at 1M sceners ~7,700 groups of
  // ~111,000 search a day, scattered, and these loads missed the cache (docs/PERFORMANCE.md 22).
  auto& searching = aff_searching_;
  searching.clear();
  for (std::size_t k = 0; k < listed.size(); ++k)
    if (aff_search_[k] != kNoSearch) searching.push_back(static_cast<std::int32_t>(k));
  constexpr std::size_t kGroupAhead = 8, kSitesAhead = 4;
  for (std::size_t q = 0; q < searching.size(); ++q) {
    if (q + kGroupAhead < searching.size()) {
      const auto* ahead = &groups_[static_cast<std::size_t>(listed[static_cast<std::size_t>(searching[q + kGroupAhead])])];
      __builtin_prefetch(ahead);
      __builtin_prefetch(&ahead->sites);
    }
    if (q + kSitesAhead < searching.size()) {
      const auto& sites = groups_[static_cast<std::size_t>(listed[static_cast<std::size_t>(searching[q + kSitesAhead])])].sites;
      if (!sites.empty()) __builtin_prefetch(sites.data());
    }
    const auto k = static_cast<std::size_t>(searching[q]);
    auto& g = groups_[static_cast<std::size_t>(listed[k])];
    const bool homeless = aff_search_[k] == kSearchHomeless;
    Stream arng(cfg_.seed, Purpose::Affiliation, static_cast<std::uint64_t>(g.id), tick_);
    // The stream's first draw decided the search above (for a group with a home): skip it.
    if (!homeless) (void)sample::bernoulli(arng, gp.affiliation_search_rate);
    bool placed = false;
    const std::pair<double, std::int32_t> key{g.recognition, g.id};
    for (std::size_t tier = 0; tier < open_by_tier.size() && !placed; ++tier) {
      if (!accepts_all[tier] && !better(key, accept_before[tier])) continue;
      auto& cands = open_by_tier[tier];
      // A uniform pick among the candidates this group is not yet on ("fresh", in cands' order),
      // without listing them: cands is ascending (sites in id order, erase keeps the order), so
      // the group's own sites are found by binary search, and the u-th fresh candidate is the
      // u-th candidate once those positions are stepped over. O(own sites x log) instead of a
      // scan of every open site of the tier per searching group (17% of a tick at 1M sceners).
      auto& own_pos = aff_own_pos_;
      own_pos.clear();
      for (auto own : g.sites) {
        const auto at = std::lower_bound(cands.begin(), cands.end(), own);
        if (at != cands.end() && *at == own) own_pos.push_back(static_cast<std::size_t>(at - cands.begin()));
      }
      std::sort(own_pos.begin(), own_pos.end());
      own_pos.erase(std::unique(own_pos.begin(), own_pos.end()), own_pos.end());
      const std::size_t n_fresh = cands.size() - own_pos.size();
      if (n_fresh == 0) continue;
      std::size_t pick = sample::uniform_index(arng, n_fresh);
      for (const auto pos : own_pos) {
        if (pos <= pick) ++pick;
        else break;
      }
      const auto s = cands[pick];
      auto& site = sites_[static_cast<std::size_t>(s)];
      site.groups.push_back(g.id);
      g.sites.push_back(s);
      if (static_cast<std::int64_t>(site.groups.size()) >= tp.groups_per_site) std::erase(cands, s);
      placed = true;
    }
    if (!placed && homeless) ++unplaced;
  }

  return unplaced;
}

void Simulation::weigh_groups() {
  // Which listed groups count and their weights in parallel, then the counted ones in list
  // order: the sequential part reads two dense arrays instead of ~111,000 128-byte Groups at 1M.
  const auto& listed = alive_groups_;
  listed_weight_.resize(listed.size());
  listed_counted_.resize(listed.size());
  parallel_for_large(std::size_t{0}, listed.size(), std::size_t{1024}, kInlineGroups, [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t k = r.begin(); k != r.end(); ++k) {
      const auto& g = groups_[static_cast<std::size_t>(listed[k])];
      listed_counted_[k] = g.alive && !g.named ? 1 : 0;
      if (listed_counted_[k]) listed_weight_[k] = 1.0 + g.recognition + g.members;
    }
  });
  pick_ids_.clear();
  pick_weight_.clear();
  for (std::size_t k = 0; k < listed.size(); ++k) {
    if (!listed_counted_[k]) continue;
    pick_ids_.push_back(listed[k]);
    pick_weight_.push_back(listed_weight_[k]);
  }
}

void Simulation::structural_change() {
  const auto& gp = cfg_.groups;
  const auto& tp = cfg_.topsites;
  const auto& sp = cfg_.sceners;
  Stream rng(cfg_.seed, Purpose::Structure, kKeyGlobal, tick_);

  // (a) Sites: precautionary closures end, ordinary closures happen.
  for (auto& s : sites_) {
    if (s.status == SiteStatus::Dark && s.reopen_tick == -2) {
      s.status = SiteStatus::Closed;
    } else if (s.status == SiteStatus::Dark && s.reopen_tick <= tick_) {
      s.status = SiteStatus::Up;
      if (tick_ >= report_first_) events_.add(date_of(tick_), "site_reopened", fmt::format("site:{}", s.id), "");
    } else if (s.live()) {
      Stream srng(cfg_.seed, Purpose::SiteClosure, static_cast<std::uint64_t>(s.id), tick_);
      if (sample::bernoulli(srng, tp.operator_closure_hazard)) s.status = SiteStatus::Closed;
    }
  }

  // (b) Named groups whose founding date is today appear with their members.
  for (std::size_t k = 0; k < named_ids_.size(); ++k) {
    const auto gid = named_ids_[k];
    if (gid < 0) continue;
    auto& g = groups_[static_cast<std::size_t>(gid)];
    if (g.founded_tick != tick_ || g.alive || g.dissolved_tick >= 0) continue;
    g.alive = true;
    if (const auto at = std::lower_bound(alive_groups_.begin(), alive_groups_.end(), gid);
        at == alive_groups_.end() || *at != gid)
      alive_groups_.insert(at, gid);
    g.last_release_tick = tick_;
    double top = 0;
    for (const auto& o : groups_) if (o.alive) top = std::max(top, o.recognition);
    g.recognition = top;  // an elite group from the start
    const auto first = static_cast<std::size_t>(named_first_scener_[k]);
    for (std::int64_t j = 0; j < cfg_.named_groups[k].members; ++j) {
      const auto id = static_cast<std::int32_t>(first + static_cast<std::size_t>(j));
      note_member(static_cast<std::size_t>(id));
      sc_.status[static_cast<std::size_t>(id)] = static_cast<std::uint8_t>(ScenerStatus::Active);
      const auto at = std::lower_bound(active_.begin(), active_.end(), id);  // reserved ids are small
      if (at == active_.end() || *at != id) active_.insert(at, id);
    }
    t_.groups_formed += 1;
    if (tick_ >= report_first_) events_.add(date_of(tick_), "group_formed", cfg_.named_groups[k].name, "named group");
  }

  // (c) Entry of new sceners: more come when the Scene falls short of its usual volume
  // (uncontested slots mean recognition is easier to win).
  const double entry_rate = sp.entry_per_day * (1.0 + sp.entry_shortfall_elasticity * scene_shortfall());
  const auto entrants = sample::poisson(rng, entry_rate);
  const std::array<double, 4> role_w = {sp.role_shares[0], sp.role_shares[1], sp.role_shares[2], sp.role_shares[3]};
  for (std::uint64_t k = 0; k < entrants; ++k) {
    const auto role = static_cast<Role>(sample::categorical(rng, role_w));
    new_scener(role, -1, -1.0f, -1.0f, Purpose::Entry, sc_.size());
    t_.entered += 1;
  }

  rebuild_members();

  // (e) Dissolution: no members left, or nothing released for too long.
  const double mem = 1.0 / gp.recognition_memory_days;
  for (const auto gid : alive_groups_) {
    auto& g = groups_[static_cast<std::size_t>(gid)];
    if (!g.alive) continue;
    g.recognition += (g.recognition_today - g.recognition) * mem;
    g.recognition_peak = std::max(g.recognition_peak, g.recognition);
    if (g.members == 0 || tick_ - g.last_release_tick > gp.dissolve_after_idle_days) dissolve(g.id, -1);
  }
  // (f) Mergers: small groups join a larger one in the same category.
  // A merger is drawn from the group's own stream (Merge, group, tick), so whether each small
  // group draws one is found in parallel (the draws do not depend on the order); the mergers are
  // then made in list order, re-checking each group as the sequential loop did (a group that
  // absorbed an earlier one may no longer be small). At 1M sceners the sequential loop over
  // every listed Group (~111,000, then 160 bytes each) was ~3 ms a day (docs/PERFORMANCE.md 12).
  const auto& listed = alive_groups_;
  weigh_groups();  // named groups keep their declared membership
  listed_flag_.assign(listed.size(), 0);
  if (pick_ids_.size() >= 2) {
    parallel_for_large(std::size_t{0}, listed.size(), std::size_t{512}, kInlineGroups, [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t k = r.begin(); k != r.end(); ++k) {
        const auto& g = groups_[static_cast<std::size_t>(listed[k])];
        if (!g.alive || g.members >= gp.min_members || g.named) continue;
        Stream grng(cfg_.seed, Purpose::Merge, static_cast<std::uint64_t>(g.id), tick_);
        listed_flag_[k] = sample::bernoulli(grng, gp.merge_rate) ? 1 : 0;
      }
    });
  }
  std::optional<sample::CumulativeTable> merge_pick;  // built at the first merge
  for (std::size_t k = 0; k < listed.size(); ++k) {
    if (!listed_flag_[k]) continue;
    auto& g = groups_[static_cast<std::size_t>(listed[k])];
    if (!g.alive || g.members >= gp.min_members || g.named) continue;  // grew by an earlier merger
    Stream grng(cfg_.seed, Purpose::Merge, static_cast<std::uint64_t>(g.id), tick_);
    (void)sample::bernoulli(grng, gp.merge_rate);  // the draw above (it said yes): skip it
    // The draws of categorical(grng, weight), by binary search (weight does not change in this
    // loop; categorical() itself is O(groups) per merge: 5% of a tick at 1M sceners).
    if (!merge_pick) merge_pick.emplace(pick_weight_);
    const auto target = pick_ids_[merge_pick->sample(grng)];
    auto& t = groups_[static_cast<std::size_t>(target)];
    if (target == g.id || !t.alive || !(t.categories & g.categories)) continue;
    t.members += g.members;
    g.members = 0;
    member_groups_touched_.push_back(g.id);  // (the next rebuild sets both counts again)
    member_groups_touched_.push_back(target);
    dissolve(g.id, target);
  }

  // (g) Sceners between groups join one, or found a new group.
  // Found in parallel over fixed chunks of the Active list, concatenated in id order.
  const std::size_t chunks =
      parallel_chunks(active_.size(), active_chunk(active_.size()), kInlineSceners, homeless_chunks_, [&](std::size_t c, std::size_t k0, std::size_t k1) {
        auto& out = homeless_chunks_[c];
        out.clear();
        for (std::size_t k = k0; k < k1; ++k) {
          const auto id = active_[k];
          if (sc_.status[static_cast<std::size_t>(id)] == static_cast<std::uint8_t>(ScenerStatus::Active) &&
              sc_.group[static_cast<std::size_t>(id)] < 0)
            out.push_back(id);
        }
      });
  auto& homeless = homeless_;
  homeless.clear();
  for (std::size_t c = 0; c < chunks; ++c) homeless.insert(homeless.end(), homeless_chunks_[c].begin(), homeless_chunks_[c].end());
  if (!homeless.empty()) {
    weigh_groups();
    const bool pick = !pick_ids_.empty();
    if (pick) homeless_pick_.assign(pick_weight_);  // reuses its storage from day to day
    // Each homeless scener's choice comes from its own stream (Structure, scener, tick) and the
    // table, which the new groups below do not change: drawn in parallel, applied in id order
    // (new groups take their ids in that order).
    homeless_target_.resize(homeless.size());
    parallel_for_large(std::size_t{0}, homeless.size(), std::size_t{1024}, kInlineSceners, [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t k = r.begin(); k != r.end(); ++k) {
        Stream hrng(cfg_.seed, Purpose::Structure, static_cast<std::uint64_t>(homeless[k]), tick_);
        homeless_target_[k] = !pick || sample::bernoulli(hrng, sp.new_group_share)
                                  ? -1
                                  : pick_ids_[homeless_pick_.sample(hrng)];
      }
    });
    for (std::size_t k = 0; k < homeless.size(); ++k) {
      const auto i = homeless[k];
      if (homeless_target_[k] < 0) {
        const auto gid = new_group(0, false, static_cast<std::uint64_t>(groups_.size()));
        note_member(static_cast<std::size_t>(i));
        sc_.group[static_cast<std::size_t>(i)] = gid;
        t_.groups_formed += 1;
        if (tick_ >= report_first_)
          events_.add(date_of(tick_), "group_formed", fmt::format("group:{}", gid), fmt::format("founder=scener:{}", i));
      } else {
        note_member(static_cast<std::size_t>(i));
        sc_.group[static_cast<std::size_t>(i)] = homeless_target_[k];
      }
    }
  }

  const std::int64_t unplaced = affiliate();

  // (i) Site founding: operators open new sites when affiliation demand exceeds supply.
  if (unplaced > 0) {
    const auto n_new = sample::poisson(rng, tp.founding_rate * static_cast<double>(unplaced));
    for (std::uint64_t k = 0; k < n_new; ++k) {
      // The founder: an active operator without a live site, else any active scener.
      std::int32_t founder = -1;
      for (std::size_t tries = 0; tries < 64 && founder < 0 && !sc_.status.empty(); ++tries) {
        const auto i = sample::uniform_index(rng, sc_.size());
        if (sc_.status[i] != static_cast<std::uint8_t>(ScenerStatus::Active)) continue;
        const bool has_live = sc_.site[i] >= 0 && sites_[static_cast<std::size_t>(sc_.site[i])].live();
        if (has_live) continue;
        if (sc_.role[i] == static_cast<std::uint8_t>(Role::Operator) || tries > 32) founder = static_cast<std::int32_t>(i);
      }
      if (founder < 0) break;
      const int bottom = static_cast<int>(tp.tier_sizes.size()) - 1;
      const auto sid = new_site(bottom, static_cast<std::uint64_t>(sites_.size()));
      sc_.site[static_cast<std::size_t>(founder)] = sid;
      sc_.role[static_cast<std::size_t>(founder)] = static_cast<std::uint8_t>(Role::Operator);
      const auto fg = sc_.group[static_cast<std::size_t>(founder)];
      if (fg >= 0 && groups_[static_cast<std::size_t>(fg)].alive) {
        sites_[static_cast<std::size_t>(sid)].groups.push_back(fg);
        groups_[static_cast<std::size_t>(fg)].sites.push_back(sid);
      }
      t_.sites_founded += 1;
      if (tick_ >= report_first_)
        events_.add(date_of(tick_), "site_founded", fmt::format("site:{}", sid),
                    fmt::format("country={}; founder=scener:{}", cfg_.topsites.countries[static_cast<std::size_t>(sites_.back().country)], founder));
    }
  }

  // (j) Re-ranking: sites are ranked by the recognition of their affiliated groups and
  // assigned to tiers in the proportions of the pyramid (TorrentFreak 2010).
  if (tick_ % tp.rerank_every_days == 0) {
    const auto tier_cut = tier_cuts();
    std::vector<std::pair<double, std::int32_t>> score;
    for (const auto& s : sites_) {
      if (s.status == SiteStatus::Seized || s.status == SiteStatus::Closed) continue;
      double sc = 0;
      for (auto g : s.groups) sc += groups_[static_cast<std::size_t>(g)].recognition;
      score.emplace_back(sc, s.id);
    }
    tbb::parallel_sort(score.begin(), score.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });  // total order: see affiliate()
    for (std::size_t k = 0; k < score.size(); ++k) {
      const double q = (k + 1.0) / static_cast<double>(score.size());
      int tier = 0;
      while (tier + 1 < static_cast<int>(tier_cut.size()) && q > tier_cut[static_cast<std::size_t>(tier)]) ++tier;
      sites_[static_cast<std::size_t>(score[k].second)].tier = tier;
    }
  }

  // (k) P2P groups enter (faster over time, and when the Scene falls short), grow, and exit.
  const auto& pp = cfg_.p2p;
  const double yr = std::clamp((date_of(tick_) - Date::from_ymd(2011, 1, 1)) / 3652.5, 0.0, 1.0);
  const double p2p_rate = (pp.entry_per_day_2011 + yr * (pp.entry_per_day_2020 - pp.entry_per_day_2011)) *
                          (1.0 + pp.shortfall_response * scene_shortfall());
  Stream prng(cfg_.seed, Purpose::P2P, kKeyGlobal, tick_);
  const auto p2p_new = sample::poisson(prng, p2p_rate);
  for (std::uint64_t k = 0; k < p2p_new; ++k) {
    P2PGroup p;
    p.id = static_cast<std::int32_t>(p2p_.size());
    Stream r(cfg_.seed, Purpose::P2P, kKeyP2P | static_cast<std::uint64_t>(p.id), tick_);
    p.categories = static_cast<std::uint8_t>(1u << sample::categorical(r, pp.category_weights));
    p.capacity = sample::exponential(r, 1.0 / pp.capacity_mean);
    p.prerelease = sample::bernoulli(r, pp.prerelease_share);
    p.founded_tick = tick_;
    p2p_.push_back(p);
  }
  for (auto& p : p2p_) {
    if (!p.alive) continue;
    if (sample::bernoulli(prng, pp.exit_hazard)) { p.alive = false; continue; }
    p.capacity = std::min(p.capacity * (1.0 + pp.capacity_growth), 20.0 * pp.capacity_mean);
  }
}

// ---------------------------------------------------------------------------------------------
// Step 7-8: market and recording
// ---------------------------------------------------------------------------------------------

void Simulation::record_leak(std::int32_t title, const economics::LeakSource& source) {
  // The first public copy of a title (Market::record_leak keeps only the first: the agents ask
  // title_leaked_ first, as they asked Market::leaked()).
  title_leaked_[static_cast<std::size_t>(title)] = 1;
  market_days_[static_cast<std::size_t>(tick_ & 1)].leaks.push_back({title, cfg_.calendar.burn_in_start.days + tick_, source});
}

void Simulation::market_day(std::int32_t tick) {
  // The day's calls, in the order the agents made them: the market gives the titles the ids the
  // agents counted (0, 1, ... in order).
  auto& day = market_days_[static_cast<std::size_t>(tick & 1)];
  for (const auto& t : day.titles) (void)market_->add_title(t);
  for (const auto& l : day.leaks) market_->record_leak(l.title, l.day, l.source);
  day.titles.clear();
  day.leaks.clear();
  // The market is stepped over the reported period only, so that its cumulative losses are
  // the period's; titles released during burn-in enter at the first step with their
  // availability caught up (economics::Market).
  if (tick < report_first_) {
    market_->prepare_first_step(report_first_ - tick);
    return;
  }
  const auto d = market_->step(cfg_.calendar.burn_in_start.days + tick);
  const std::int32_t row = tick - report_first_;
  const std::array<double, 3> values{d.legal_revenue_usd, d.counterfactual_revenue_usd, d.loss_usd};
  for (std::size_t k = 0; k < values.size(); ++k) {
    series_->set(market_col_ + k, row, values[k]);
    // Numerical guard of the market's columns (issue 9; the agents' columns: guard_finite()).
    // Market::step() names the title when one of its values is not finite, so a non-finite
    // total here is an overflow of the day's sums.
    if (!std::isfinite(values[k]))
      throw NumericalError(fmt::format("non-finite value: series.{} = {} at tick {} ({}); no single title holds a "
                                       "non-finite value (the market's daily sum overflowed)",
                                       series_->names()[market_col_ + k], values[k], tick, date_of(tick).iso()));
  }
}

void Simulation::record() {
  // Shortfall signals: 14-day vs 365-day exponential averages of Scene output.
  releases_ema_short_ += (t_.scene - releases_ema_short_) / 14.0;
  releases_ema_long_ += (t_.scene - releases_ema_long_) / 365.0;
  for (std::size_t c = 0; c < kCategories; ++c) {
    cat_ema_short_[c] += (t_.scene_by_cat[c] - cat_ema_short_[c]) / 14.0;
    cat_ema_long_[c] += (t_.scene_by_cat[c] - cat_ema_long_[c]) / 365.0;
  }
  if (tick_ < report_first_) return;
  const auto d = tick_ - report_first_;
  auto& s = *series_;
  std::size_t col = 0;
  auto put = [&](double v) { s.set(col++, d, v); };
  put(t_.scene);
  put(t_.p2p);
  for (double v : t_.scene_by_cat) put(v);
  put(t_.slots);
  put(t_.dupes);
  put(t_.active);
  put(t_.dormant);
  const auto& ep = cfg_.enforcement;
  const RiskSum rs = active_risk_sum(active_, sc_.status.data(), sc_.chill.data(), ep.detection_per_day * ep.perception);
  const auto total = static_cast<double>(rs.active);  // (a count: exact, as the sum of ones was)
  const double risk = rs.risk;
  put(total);
  put(t_.entered);
  put(t_.retired);
  put(t_.arrested);
  put(static_cast<double>(arrested_total_));
  put(t_.sellers);
  double sold = 0, price_w = 0, price_n = 0;
  int live = 0, dark = 0;
  for (const auto& site : sites_) {
    sold += site.sold_accounts;
    if (site.live()) {
      ++live;
      if (site.sellers > 0) { price_w += site.price_usd * site.sellers; price_n += site.sellers; }
    }
    if (site.status == SiteStatus::Dark) ++dark;
  }
  put(sold);
  put(price_n > 0 ? price_w / price_n : 0.0);
  put(t_.money_usd);
  put(live);
  put(dark);
  put(static_cast<double>(seized_total_));
  put(t_.sites_founded);
  double groups_alive = 0;
  for (const auto gid : alive_groups_) groups_alive += groups_[static_cast<std::size_t>(gid)].alive ? 1 : 0;
  put(groups_alive);
  put(t_.groups_formed);
  put(t_.groups_dissolved);
  double p2p_alive = 0;
  for (const auto& p : p2p_) p2p_alive += p.alive ? 1 : 0;
  put(p2p_alive);
  put(t_.leaks);
  put(t_.leaks_pre);
  put(total > 0 ? risk / total : 0.0);
  // The market's columns (the last three) are written by market_day().
}

void Simulation::check_invariants() const {
  auto fail = [&](const std::string& what) {
    throw ModelError(fmt::format("invariant violated on {} (tick {}): {}", date_of(tick_).iso(), tick_, what));
  };
  for (const auto& s : sites_)
    if (!(s.sold_accounts >= 0) || !std::isfinite(s.price_usd)) fail(fmt::format("site:{} sold_accounts={} price={}", s.id, s.sold_accounts, s.price_usd));
  for (const auto& g : groups_) {
    if (g.releases < 0 || g.wins_today < 0 || g.effort < 0) fail(fmt::format("group:{} negative count", g.id));
    for (auto s : g.sites)
      if (std::find(sites_[static_cast<std::size_t>(s)].groups.begin(), sites_[static_cast<std::size_t>(s)].groups.end(), g.id) ==
          sites_[static_cast<std::size_t>(s)].groups.end())
        fail(fmt::format("group:{} lists site:{} which does not list it", g.id, s));
  }
  // The member index lists each group's members in id order (imitation partners are drawn by
  // position in it).
  for (std::size_t g = 0; g + 1 < member_start_.size(); ++g)
    for (auto k = member_start_[g] + 1; k < member_start_[g + 1]; ++k)
      if (member_ids_[static_cast<std::size_t>(k - 1)] >= member_ids_[static_cast<std::size_t>(k)])
        fail(fmt::format("group:{}: member index not in id order", g));
  double wins = 0;
  for (const auto& g : groups_) wins += g.wins_today;
  if (wins != t_.scene) fail(fmt::format("releases {} != wins credited to groups {}", t_.scene, wins));
  for (std::size_t i = 0; i < sc_.size(); ++i) {
    if (!std::isfinite(sc_.hat[i][0].r) || !std::isfinite(sc_.hat[i][1].m) || !std::isfinite(sc_.chill[i]) || sc_.chill[i] < 0)
      throw NumericalError(fmt::format("non-finite or negative state of scener:{} on {} (tick {})", i, date_of(tick_).iso(), tick_));
  }
}

void Simulation::step() {
  if (tick_ >= n_ticks_) return;
  finish_market();  // a run() stopped by an error in on_tick may have left one
  advance(/*lag_market=*/false);
}

void Simulation::finish_market() {
  if (market_lag_tick_ < 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  const auto tick = std::exchange(market_lag_tick_, -1);
  market_day(tick);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  phase_s_[kPhaseMarket] += s;
  phase_s_[kPhaseTick] += s;
}

namespace {
using PhaseClock = std::chrono::steady_clock;
double seconds_since(PhaseClock::time_point t0) {
  return std::chrono::duration<double>(PhaseClock::now() - t0).count();
}
}  // namespace

bool Simulation::claim_sources(SourcesTask& task) {
  int unclaimed = 0;
  if (!task.state.compare_exchange_strong(unclaimed, 1, std::memory_order_acq_rel)) return false;
  const auto t0 = PhaseClock::now();
  try {
    open_sources();
  } catch (...) {
    task.error = std::current_exception();
  }
  task.seconds = seconds_since(t0);
  task.state.store(2, std::memory_order_release);
  return true;
}

void Simulation::await_sources(SourcesTask& task) {
  if (!claim_sources(task)) {
    // Claimed by the market's task, which is running it: a short wait (it takes ~27 us a day
    // in the default run, and decide() alone ~80 us).
    while (task.state.load(std::memory_order_acquire) != 2) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
  if (task.error) std::rethrow_exception(task.error);
}

void Simulation::agents_day_start(SourcesTask* sources) {
  auto lap_start = PhaseClock::now();
  const auto lap = [&](Phase phase) {
    const auto now = PhaseClock::now();
    phase_s_[static_cast<std::size_t>(phase)] += std::chrono::duration<double>(now - lap_start).count();
    lap_start = now;
  };
  t_ = Tally{};
  compact_active();
  if (sources == nullptr) {
    open_sources();         // 1
    lap(kPhaseOpenSources);
  }
  decide();                 // 2 (parallel)
  lap(kPhaseDecide);
  aggregate_decisions();
  lap(kPhaseAggregate);
  if (sources != nullptr) {
    // 1, on the market's task beside decide() and the aggregation, or here if it has not begun
    // (its time is counted in advance(), wherever it ran; a wait is counted nowhere).
    await_sources(*sources);
    lap_start = PhaseClock::now();
  }
  race();                   // 3
  lap(kPhaseRace);
  access_market_and_leaks();// 4
  p2p_releases();
  lap(kPhaseAccessP2P);
}

void Simulation::agents_day_end() {
  const auto t0 = PhaseClock::now();
  record();                 // 8 (the agents' columns; the market's: market_day())
  guard_finite();           // NaN/inf in the day's aggregates stops the run (issue 9)
#ifdef PIRACY_SEATBELTS
  check_invariants();
#endif
  phase_s_[kPhaseRecord] += seconds_since(t0);
}

void Simulation::advance(bool lag_market) {
  const auto tick_start = PhaseClock::now();
  // The agents' enforcement (5) and structural change (6), timed each.
  const auto enforcement_and_structural = [&] {
    const auto t0 = PhaseClock::now();
    enforcement();
    phase_s_[kPhaseEnforcement] += seconds_since(t0);
    const auto t1 = PhaseClock::now();
    structural_change();
    phase_s_[kPhaseStructural] += seconds_since(t1);
  };
  // The market (7) only consumes what the agents handed it for its day (market_day()) and
  // writes only its own state and its own series columns, which the agents never touch: running
  // it at the same time as agent phases gives the same bytes as running it after them, with one
  // thread or many. An error is reported as a sequential run would report it: the earlier one.
  std::exception_ptr agents_error, market_error;
  double market_s = 0;
  const auto market = [&](std::int32_t tick) {
    try {
      const auto t0 = PhaseClock::now();
      market_day(tick);
      market_s = seconds_since(t0);
    } catch (...) {
      market_error = std::current_exception();
    }
  };
  const bool parallel = usable_threads() > 1;
  if (lag_market && parallel) {
    // run(): the market's previous day alongside the whole of the agents' day (in the default
    // run the market is ~40% of a tick and the agents' loops are too small to occupy two
    // threads: docs/PERFORMANCE.md 11). The agents' day does not wait for its own market day,
    // which runs alongside the next tick or in finish_market().
    // The day's open_sources() goes on the market's task too, before the market's day, unless
    // the agents' thread reaches the race first (SourcesTask), when decide() runs on the
    // calling thread (below its kInline size): beside a parallel decide() it took a core from
    // it (at 1M sceners decide() on 2 threads took 0.24-0.30 s instead of 0.20-0.24 s).
    const std::int32_t previous = std::exchange(market_lag_tick_, -1);
    const bool sources_beside = previous >= 0 && active_.size() < kInlineSceners;
    SourcesTask sources;
    const auto agents = [&] {
      try {
        agents_day_start(sources_beside ? &sources : nullptr);
        enforcement_and_structural();
        agents_day_end();
      } catch (...) {
        agents_error = std::current_exception();
      }
    };
    bool beside = false;
    if (previous >= 0) {
      tbb::parallel_invoke(agents, [&] {
        if (sources_beside) beside = claim_sources(sources);
        market(previous);
      });
      // An error is reported as a sequential run would: the market's previous day, then the
      // sources, then the rest of the agents' day (which may have failed before claiming the
      // sources: they are run now to find out).
      if (sources_beside && agents_error && sources.state.load(std::memory_order_acquire) == 0) (void)claim_sources(sources);
      phase_s_[kPhaseOpenSources] += sources.seconds;
      if (beside) sources_beside_s_ += sources.seconds;
    } else {
      agents();
    }
    phase_s_[kPhaseMarket] += market_s;
    if (market_error) std::rethrow_exception(market_error);  // the previous day's: the earlier
    if (sources.error) std::rethrow_exception(sources.error);
    if (agents_error) std::rethrow_exception(agents_error);
    market_lag_tick_ = tick_;
  } else {
    // step(), or one thread: the day's market alongside the agents' enforcement and structural
    // change (it has all of the day's titles and leaks once the P2P releases are done).
    agents_day_start();
    const auto agents = [&] {
      try {
        enforcement_and_structural();
      } catch (...) {
        agents_error = std::current_exception();
      }
    };
    if (parallel) {
      tbb::parallel_invoke(agents, [&] { market(tick_); });
    } else {
      agents();
      if (!agents_error) market(tick_);
    }
    phase_s_[kPhaseMarket] += market_s;
    if (agents_error) std::rethrow_exception(agents_error);
    if (market_error) std::rethrow_exception(market_error);
    agents_day_end();
  }
  phase_s_[kPhaseTick] += seconds_since(tick_start);
  ++tick_;
}

void run_paired(Simulation& sim, Simulation* counterfactual,
                const std::function<void(int which, std::int64_t done, std::int64_t total)>& on_tick) {
  if (counterfactual == nullptr || usable_threads() <= 1) {
    sim.run([&](std::int64_t done, std::int64_t total) { on_tick(0, done, total); });
    if (counterfactual != nullptr)
      counterfactual->run([&](std::int64_t done, std::int64_t total) { on_tick(1, done, total); });
    return;
  }
  // The paired runs of the default scenario each take as long as the other and their own loops
  // occupy two threads only in part (docs/PERFORMANCE.md 11): side by side, the main job takes
  // about the time of one run instead of two.
  struct Stopped {};  // the counterfactual was stopped because sim failed
  std::atomic<bool> sim_failed{false};
  std::exception_ptr sim_error, cf_error;
  tbb::parallel_invoke(
      [&] {
        try {
          sim.run([&](std::int64_t done, std::int64_t total) { on_tick(0, done, total); });
        } catch (...) {
          sim_error = std::current_exception();
          sim_failed.store(true, std::memory_order_relaxed);
        }
      },
      [&] {
        try {
          counterfactual->run([&](std::int64_t done, std::int64_t total) {
            if (sim_failed.load(std::memory_order_relaxed)) throw Stopped{};
            on_tick(1, done, total);
          });
        } catch (const Stopped&) {
        } catch (...) {
          cf_error = std::current_exception();
        }
      });
  if (sim_error) std::rethrow_exception(sim_error);
  if (cf_error) std::rethrow_exception(cf_error);
}

const char* Simulation::phase_name(int phase) noexcept {
  static constexpr std::array<const char*, kPhases> kNames{
      "open_sources", "decide", "aggregate", "race", "access+p2p", "enforcement", "structural", "record", "market",
      "tick"};
  return phase >= 0 && phase < kPhases ? kNames[static_cast<std::size_t>(phase)] : "?";
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

const std::string& Simulation::named_group_name(const Group& g) const {
  return cfg_.named_groups.at(static_cast<std::size_t>(g.named_index)).name;
}

std::int32_t Simulation::named_group_id(const std::string& name) const {
  for (std::size_t k = 0; k < cfg_.named_groups.size(); ++k)
    if (cfg_.named_groups[k].name == name) return named_ids_[k];
  return -1;
}

std::int64_t Simulation::named_group_releases(const std::string& name) const {
  const auto id = named_group_id(name);
  return id >= 0 ? groups_[static_cast<std::size_t>(id)].releases : 0;
}

std::vector<GroupRecord> Simulation::group_records() const {
  std::vector<GroupRecord> out;
  for (const auto& g : groups_)
    if (g.dissolved_tick != kNeverExisted && (g.alive || g.dissolved_tick >= 0))
      out.push_back({g.id, g.named ? named_group_name(g) : std::string(), g.founded_tick, g.dissolved_tick, g.releases, g.recognition_peak});
  return out;
}

}  // namespace piracy
