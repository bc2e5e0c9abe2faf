#pragma once
// Market for legal copies of titles, with and without piracy (MODEL.md section 3 step 7 and
// section 4). Piracy availability of each title spreads once a public copy exists (Bass
// diffusion); legal demand per channel falls with availability, more when the leak came before
// the window opened; part of the displaced demand moves to other channels. The counterfactual
// without piracy is computed from the same arrays in the same pass, so a loss is an exact
// difference, never the difference of two noisy runs.
//
// Recommended default values (default_market_params()); "assumption" marks a figure that has
// no direct empirical source and should be calibrated (MODEL.md P5: Sparks-attributed losses
// 2011-2020 between about $10M and $100M) or varied in a sensitivity analysis.
//
//   price_usd (consumer spending per unit, i.e. losses at retail value, the basis of the
//   rights holders' loss claims; a studio's share is roughly half of it -- assumption):
//     theatrical    9.16  NATO average US ticket price, first half of 2019 (2018: $9.11)
//     disc         20.00  assumption: blended new-release DVD / Blu-ray street price; DEG 2019
//                         year-end report gives disc sales of $3.29bn but no unit count
//     digital      10.00  assumption: blend of EST purchases (~$15-20) and iVOD rentals (~$6);
//                         DEG 2019: EST ~$2.6bn, VOD $1.96bn
//     subscription  1.00  assumption: value of one subscription viewing to the rights holder
//                         (DEG 2019: $15.9bn subscription streaming, no per-view figure)
//   share (of a title's lifetime legal audience, by channel; must sum to <= 1):
//     0.40 / 0.10 / 0.20 / 0.30  assumption, loosely after the 2019 US spending mix (MPA 2019
//     box office ~$11.4bn; DEG 2019 home entertainment $25.2bn of which 63% subscription)
//   decay_per_day (lambda_c, exponential decay of demand after the window opens):
//     theatrical   ln2/7   ~0.099  assumption: typical second-weekend drop of ~50%
//     disc         ln2/21  ~0.033  assumption: half of a disc's sales in its first 3 weeks
//     digital      ln2/42  ~0.0165 assumption
//     subscription ln2/180 ~0.00385 assumption: long catalogue tail
//   displacement (d_c, legal views lost per illegal view):
//     0.40 theatrical, disc, digital  EU Commission / Ecorys 2017, "Estimating displacement
//                         rates of copyrighted content in the EU": 10 illegal views of a recent
//                         top film displace 4 legal ones (the home windows open within months)
//     0.20 subscription   same study: 2 per 10 illegal second viewings; used as the proxy for
//                         older titles (the study says older films displace less than 40%)
//   pre_release_penalty (pre_c, extra loss at full availability when the leak precedes the window):
//     0.191 theatrical    Ma, Montgomery, Singh & Smith 2014, Information Systems Research
//                         25(3):590-603: pre-release piracy -19.1% box office vs post-release
//     0.191 disc, digital assumption: the same effect extrapolated to the first home windows
//                         (the Sparks vector: discs leaked weeks before the street date)
//     0.0   subscription  assumption: by then the title is no longer new
//   piracy_propensity (kappa): 0.50  Ecorys 2017: 51% of EU adults (72% of minors)
//                         downloaded or streamed creative content illegally in 2014; a prior,
//                         to be calibrated
//   bass_p 0.05 /day, bass_q 0.40 /day: assumption. Bass (1969) coefficients are per year for
//                         durables (meta-analysis mean p = 0.03, q = 0.38: Sultan, Farley &
//                         Lehmann 1990); a public copy spreads in days: with these values
//                         availability is 0.05 on the leak day, 0.55 five days later and
//                         0.95 ten days later.
//   substitution S: zero. The Ecorys displacement rates are net losses of legal consumption,
//                         so recovering part of them elsewhere would double count; no study
//                         measures cross-channel recovery of pirated demand (use S for
//                         sensitivity runs).
//   life_days: 1095       assumption: three years after the first window; the demand of a
//                         subscription window opening ~300 days after the first window is
//                         truncated by ~5% (e^{-795 lambda}), the other channels by < 0.1%.
#include <Eigen/Core>
#include <tbb/enumerable_thread_specific.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <optional>
#include <queue>
#include <unordered_map>
#include <span>
#include <utility>
#include <vector>

#include "engine/large_pages.hpp"

namespace piracy::economics {

/// Legal distribution channels (columns of every titles x channels array).
constexpr int kChannels = 4;
enum Channel : int { kTheatrical = 0, kDisc = 1, kDigital = 2, kSubscription = 3 };
/// "theatrical", "disc", "digital", "subscription" (for messages and output columns).
[[nodiscard]] const char* channel_name(int channel) noexcept;

struct MarketParams {
  std::array<double, kChannels> price_usd{};            //!< consumer price per legal unit
  std::array<double, kChannels> share{};                //!< share of a title's lifetime audience per channel, sum <= 1
  std::array<double, kChannels> decay_per_day{};        //!< lambda_c > 0: demand decay after the window opens
  std::array<double, kChannels> displacement{};         //!< d_c in [0,1]: legal views lost per illegal view
  std::array<double, kChannels> pre_release_penalty{};  //!< pre_c in [0,1]: extra loss when leaked before the window
  double piracy_propensity = 0.0;  //!< kappa in [0,1]: share of the audience that would watch a free copy
  double bass_p = 0.0;             //!< Bass innovation coefficient per day, in (0,1]
  double bass_q = 0.0;             //!< Bass imitation coefficient per day, >= 0 (scaled by popularity)
  /// S(k, j): share of the demand displaced from channel j that is recovered in channel k;
  /// entries >= 0, column sums <= 1 (1 = displaced demand only moves between channels).
  Eigen::Matrix4d substitution = Eigen::Matrix4d::Zero();
  std::int32_t life_days = 0;      //!< a title leaves the market this many days after its first window
};

/// The recommended defaults documented at the top of this file.
[[nodiscard]] MarketParams default_market_params();

/// Throws piracy::ModelError naming the field, the value and the allowed range.
void validate(const MarketParams& params);

/// Availability of a title `days_since_leak` days after its first public copy: the daily Bass
/// recursion A <- clamp(A + (p + q*popularity*A)(1 - A), 0, 1) started from A = p on the leak day
/// (days_since_leak = 0); 0 before the leak. Bass 1969, "A new product growth for model consumer
/// durables", Management Science 15(5), discretised per day. With q = 0 it has the closed form
/// A_n = 1 - (1-p)^(n+1).
[[nodiscard]] double bass_availability(double p, double q, double popularity, std::int64_t days_since_leak);

/// bass_availability() of many titles at once, bit for bit: out[j] = bass_availability(p, q,
/// popularity[j], days_since_leak[j]). The recursions of eight titles advance side by side (each
/// is a chain of dependent operations, ~25 cycles a day for one title alone): on the market's
/// first reported day every title already out enters with its availability caught up (~55,000
/// titles and ~25 million days in the default scenario: one title after the other 42 ms of that
/// one day, eight side by side 22 ms, 32 on AVX-512 less; docs/PERFORMANCE.md 26). Titles in
/// groups of 32 in the given order: titles sorted by days waste the fewest lane-days. The spans
/// have one size.
void bass_availability_many(double p, double q, std::span<const double> popularity,
                            std::span<const std::int64_t> days_since_leak, std::span<double> out);
/// bass_availability_many() without 512-bit vectors (eight scalar recursions interleaved): the
/// path of CPUs without AVX-512, callable everywhere for the tests.
void bass_availability_many_portable(double p, double q, std::span<const double> popularity,
                                     std::span<const std::int64_t> days_since_leak, std::span<double> out);

struct MarketTitle {
  double audience = 0.0;    //!< expected lifetime legal audience without piracy, units (all channels)
  double popularity = 1.0;  //!< multiplies the Bass imitation coefficient q
  /// First day of each channel's window (day index, e.g. piracy::Date::days); < 0: no such window.
  std::array<std::int32_t, kChannels> window_start{-1, -1, -1, -1};
};

/// Source of a title's first public copy, to which all of the title's loss is attributed.
struct LeakSource {
  std::int32_t group = -1;   //!< release group id, -1 unknown
  bool p2p = false;          //!< true: a P2P group; false: the Scene
  bool pre_release = false;  //!< leaked before the official release (as judged by the caller)
};

/// Totals over the day(s) advanced by one Market::step call (normally one day).
struct DayTotals {
  double legal_revenue_usd = 0.0;           //!< sum_c price_c D''_c: with piracy
  double counterfactual_revenue_usd = 0.0;  //!< sum_c price_c D_c: same titles, no piracy
  double loss_usd = 0.0;                    //!< counterfactual - legal
  std::array<double, kChannels> loss_by_channel_usd{};  //!< may be < 0 in channels receiving substitution
  int active_titles = 0;                    //!< titles in the market on the (last) day
};

/// Cumulative losses since construction.
struct LossSummary {
  double total_usd = 0.0;
  double scene_usd = 0.0;        //!< first public copy from the Scene (or unleaked: always 0)
  double p2p_usd = 0.0;          //!< first public copy from a P2P group
  double pre_release_usd = 0.0;  //!< first public copy flagged pre-release
  std::array<double, kChannels> by_channel_usd{};
  /// group id (-1 unknown) -> loss; every group named in an accepted record_leak() appears,
  /// possibly with 0 (e.g. its leak was replaced by an earlier one).
  std::map<std::int32_t, double> by_group_usd;
};

/// Runtime of the market: titles x channels arrays over the titles currently in the market.
///
/// A title is in the market (the "active set") from its first window day to first window +
/// life_days (exclusive); the arrays hold only those titles, compacted, so a day costs
/// O(active titles) whatever the history. Titles whose state has settled (availability at its
/// fixed point) move to a part of the arrays that the daily pass skips and are carried in
/// decaying sums (see "Settled titles" below), so a day costs O(unsettled titles + attribution
/// keys); results differ from a pass over every title only in the last bits. Titles that open
/// before the first step enter at the first step with their state caught up (earlier days are
/// not counted). A leak recorded while a title is not yet in the market is remembered and the
/// title's availability is caught up when it enters.
///
/// Order within a day t (step): titles whose life ended leave; titles whose first window came
/// enter; leaks of day t start (A = p); availability advances (Bass); windows opening on day t
/// get their demand and their pre-release factor (from A_i(t)); then one batched pass over the
/// active rows computes D, D', D'', revenue and losses, attributes them, and decays D for day
/// t + 1; the settled titles' sums add their day t and decay; rows whose availability did not
/// change settle.
/// Memory: besides the active arrays, a ledger of 16 bytes per (group, day) with a loss, for
/// loss_by_group_between().
class Market {
 public:
  explicit Market(MarketParams params);  // validates

  /// Registers a title; returns its id (0, 1, 2, ... in order). Throws ModelError for a negative
  /// or non-finite audience or popularity.
  std::int32_t add_title(const MarketTitle& title);

  /// Records the first public copy of `title` on `day` (usually the day being simulated, before
  /// step(day)). Only the first leak counts: a later-dated leak is ignored; an earlier-dated one
  /// replaces a recorded leak that has not happened yet. A past day is fine for a title not yet
  /// in the market (its availability is caught up when it enters). Throws ModelError for an
  /// unknown title, or for a day already stepped while the title was in the market (unless the
  /// call would be ignored anyway).
  void record_leak(std::int32_t title, std::int32_t day, const LeakSource& source);

  /// Makes room ahead of time for about `titles` title records in all and `first_step_rows` rows
  /// at the first step: expected counts, which need not be exact (more room is made as titles
  /// come, as without a plan). Memory only: changes no value. The room for the records is address
  /// space until written; the rows are grown to the plan by the first prepare_first_step() and
  /// written by the later ones, a part a day (docs/PERFORMANCE.md 27).
  void plan_capacity(std::int64_t titles, std::int64_t first_step_rows);

  /// Before the first step only (a no-op after it): grows the rows' capacity to hold every title
  /// not yet in the market (and the plan's rows), and writes a part of the new memory, so that the
  /// first step's admissions find it paged in: the rows not yet written divided by `days_left` (the
  /// calls still to come before the first step, counting this one), at least 1,024 rows a call.
  /// Changes no value. The simulation calls it on each burn-in day, on the market's task, which
  /// idles then (docs/PERFORMANCE.md 26, 27): on the first reported day ~105,000 titles enter at
  /// once, and the first touch of their rows was part of that day's work; written all at once
  /// when the rows doubled, the memory kept the agents waiting on those days.
  void prepare_first_step(std::int32_t days_left = 1);

  [[nodiscard]] bool leaked(std::int32_t title) const;
  /// Availability A of the title on the last stepped day (0 before its leak).
  [[nodiscard]] double availability(std::int32_t title) const;
  [[nodiscard]] std::int32_t title_count() const noexcept { return static_cast<std::int32_t>(titles_.size()); }
  /// Titles in the market: rows of the active arrays plus settled titles (see below).
  [[nodiscard]] int active_titles() const noexcept { return static_cast<int>(n_active_ + n_settled_); }
  /// Titles in the market whose state has settled and which are carried in the aggregates.
  [[nodiscard]] int settled_titles() const noexcept { return static_cast<int>(n_settled_); }

  /// Advances to `day` (days strictly increasing; normally last day + 1). If days were skipped,
  /// they are simulated too and the returned totals cover every day advanced by this call, so
  /// the sum of all DayTotals always equals summary(). Throws ModelError if day <= last day,
  /// NumericalError on NaN/inf naming the quantity, the title and the day.
  DayTotals step(std::int32_t day);

  [[nodiscard]] LossSummary summary() const;

  /// Loss incurred on days in [from_day, to_day] by titles whose first public copy came from each
  /// group (-1 unknown); groups without loss in the range are absent.
  [[nodiscard]] std::map<std::int32_t, double> loss_by_group_between(std::int32_t from_day,
                                                                     std::int32_t to_day) const;

  [[nodiscard]] const MarketParams& params() const noexcept { return params_; }

 private:
  static constexpr std::int32_t kNever = std::numeric_limits<std::int32_t>::max();  //!< leak day of an unleaked title
  enum class TitleState : std::uint8_t { Pending, Active, Done };

  struct TitleRecord {
    MarketTitle title;
    std::int32_t first_window = kNever;  //!< min over present windows; kNever: no window at all
    std::int32_t leak_day = kNever;
    LeakSource source;
    std::int32_t group_slot = -1;        //!< index into group_ids_ once leaked
    std::int32_t active_row = -1;        //!< row in the arrays (active or settled part), -1 when not in the market
    bool settled = false;                //!< its row is in the settled part
    TitleState state = TitleState::Pending;
  };

  // Settled titles (docs/PERFORMANCE.md 15). Once a title's availability has stopped changing
  // (the Bass recursion has reached its fixed point in double precision, or the title has no
  // leak, past or scheduled), every daily quantity of the title is a fixed multiple of its demand
  // D_ic, and D_ic only decays by e^{-lambda_c} a day (a window still to open adds its first
  // day's demand when it opens, with the pre-release factor of the settled availability). The
  // title's row then moves to the settled part of the arrays (rows [n_active_, n_active_ +
  // n_settled_), which the daily pass does not visit: its D, A and pre-release factors stay as
  // they were, so no memory is added) and the title is carried in sums that decay the same way:
  // one per channel for the counterfactual, one per pair of channels for the net lost units, and
  // one per channel for each attribution key (loss slot, P2P, pre-release) for the losses. A day
  // then costs O(active rows + keys) instead of O(titles in the market). The sums add the same
  // terms as the rows did, in a different order: results differ from a pass over every title in
  // the last bits only. A settled title that leaks later becomes an active row again (with D
  // recomputed by the daily recursion, so exactly the row it would have been); one that leaves
  // the market is subtracted, its D recomputed with pow().
  /// Decaying loss sums of the settled titles of one attribution key.
  struct AggregateKey {
    std::array<double, kChannels> loss{};  //!< sum_i D_ij c_ij, c_ij: loss in USD per unit of D_ij
    std::int64_t titles = 0;
    std::int32_t slot = 0;                 //!< 1 + group slot
    bool p2p = false;
    bool pre = false;
  };
  [[nodiscard]] Eigen::Index rows() const noexcept { return n_active_ + n_settled_; }
  /// Copies row `from` (every array) to row `to` and tells the title.
  void move_row(Eigen::Index from, Eigen::Index to);
  void swap_rows(Eigen::Index a, Eigen::Index b);
  /// The attribution key of a leaked row (created if `create`), -1 for a row without a leak.
  std::int32_t key_of(Eigen::Index row, bool create);
  /// key_of() without creating: -2 if a leaked row has no key (a seatbelt check).
  [[nodiscard]] std::int32_t key_of_known(Eigen::Index row) const;
  void settle_row(Eigen::Index row, std::int32_t t);
  void unsettle(std::int32_t id);
  void retire_settled(TitleRecord& r, std::int32_t day);
  /// One title fewer in the settled sums (of key `key`, -1 none): no rounding residue once empty.
  void forget_settled(std::int32_t key);
  /// Adds channel `channel` of settled row `row` with demand D (< 0: takes it out) to the sums.
  void add_settled(Eigen::Index row, int channel, double demand, std::int32_t key);
  /// Window `channel` of settled title `r` opens on `day`.
  void settled_open(TitleRecord& r, int channel, std::int32_t day);
  /// The day the stored demand of channel c of a settled row refers to.
  [[nodiscard]] std::int32_t settled_ref_day(Eigen::Index row, int channel) const;
  std::int64_t n_settled_ = 0;
  std::vector<std::int32_t> settled_day_;  //!< per settled row: the day after it settled
  std::array<double, kChannels> agg_demand_{};                            //!< sum_i D_ij
  std::array<std::array<double, kChannels>, kChannels> agg_units_{};      //!< [k][j]: sum_i D_ij u_ikj (net lost units of k)
  std::vector<AggregateKey> keys_;
  /// slot * 4 + p2p * 2 + pre -> key, -1 for none: a flat table (the slots are the groups whose
  /// releases leaked, a few thousand; a hash map's lookup was 1.6% of a 1-thread default run).
  std::vector<std::int32_t> key_index_;
  std::vector<std::uint8_t> settle_;         //!< per row: compute_block found A unchanged
  std::vector<std::int32_t> to_settle_;      //!< rows to settle after today's pass, ascending

  using DayId = std::pair<std::int32_t, std::int32_t>;  // (day, title id), min-heap order
  using MinHeap = std::priority_queue<DayId, std::vector<DayId>, std::greater<>>;

  /// (first window, id) of the titles not yet in the market, taken smallest first. Titles nearly
  /// always come in that order (a film's first window is its release, the day the simulation
  /// registers it), so those are kept in an increasing run, taken from its front in O(1), and
  /// only the others in a heap: the smaller of the two fronts is the next. The first reported day
  /// of a default run takes ~105,600 titles at once, and a heap's pops were ~7 ms of that day
  /// (docs/PERFORMANCE.md 27). The same order as one heap: (day, id) pairs are distinct.
  class PendingTitles {
   public:
    void push(DayId x) {
      if (head_ == run_.size() || run_.back() < x) run_.push_back(x);
      else heap_.push(x);
    }
    [[nodiscard]] bool empty() const noexcept { return head_ == run_.size() && heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return run_.size() - head_ + heap_.size(); }
    /// The smallest; not empty().
    [[nodiscard]] const DayId& top() const {
      if (head_ == run_.size()) return heap_.top();
      if (heap_.empty() || run_[head_] < heap_.top()) return run_[head_];
      return heap_.top();
    }
    void pop() {
      if (head_ != run_.size() && (heap_.empty() || run_[head_] < heap_.top())) {
        ++head_;
        if (head_ == run_.size()) {  // (taken whole: the run starts again)
          run_.clear();
          head_ = 0;
        } else if (head_ >= 4096 && 2 * head_ >= run_.size()) {  // (the taken half dropped: amortised O(1))
          run_.erase(run_.begin(), run_.begin() + static_cast<std::ptrdiff_t>(head_));
          head_ = 0;
        }
        return;
      }
      heap_.pop();
    }

   private:
    std::vector<DayId> run_;  //!< increasing; [head_, end) not yet taken
    std::size_t head_ = 0;
    MinHeap heap_;
  };

  /// Events keyed by the exact day they happen on (every day is simulated, so each bucket is
  /// visited once): O(1) to add and to take, unlike a heap.
  class DayBuckets {
   public:
    void add(std::int32_t day, std::int32_t code) { buckets_[day].push_back(code); }
    std::vector<std::int32_t> take(std::int32_t day) {
      const auto it = buckets_.find(day);
      if (it == buckets_.end()) return {};
      std::vector<std::int32_t> out = std::move(it->second);
      buckets_.erase(it);
      return out;
    }

   private:
    std::unordered_map<std::int32_t, std::vector<std::int32_t>> buckets_;
  };

  DayTotals advance_one_day(std::int32_t day);
  void retire_titles(std::int32_t day);
  void admit_titles(std::int32_t day);
  /// `caught_up`: the title's availability as of day - 1 when computed beforehand
  /// (admit_titles()); else computed here if it needs one.
  void admit(std::int32_t id, std::int32_t day, std::optional<double> caught_up = std::nullopt);
  void start_leaks(std::int32_t day);
  void open_windows(std::int32_t day);
  void remove_row(Eigen::Index row);
  void reserve_rows(Eigen::Index rows);
  Eigen::Index planned_rows_ = 0;  //!< plan_capacity()'s rows at the first step
  Eigen::Index written_rows_ = 0;  //!< rows of the double arrays written since they were allocated (before the first step)
  std::int32_t group_slot(std::int32_t group);
  [[nodiscard]] const TitleRecord& record(std::int32_t title) const;
  [[nodiscard]] double pre_release_factor(int channel, double availability_at_open) const;

  MarketParams params_;
  // Per-channel constants derived from params_.
  std::array<double, kChannels> day_share_{};   //!< share_c (1 - e^{-lambda_c}): demand on the opening day per unit audience
  std::array<double, kChannels> retention_{};   //!< e^{-lambda_c}: day-to-day demand ratio
  bool has_substitution_ = false;
  std::array<bool, kChannels> recovers_{};      //!< row k of S is not zero

  // (grows to ~500,000 records in a default run: in huge pages, engine/large_pages.hpp)
  LargeVector<TitleRecord> titles_;
  // Events, so that the daily pass over the active set needs no per-title branches (which would
  // stop Eigen from vectorising it): stale entries are skipped when popped.
  PendingTitles pending_;  //!< (first window, id) of titles not yet in the market (may be in the past)
  // admit_titles()'s scratch: the day's entering titles, and the catch-ups computed together.
  std::vector<std::int32_t> entering_;
  std::vector<std::pair<std::int64_t, std::uint32_t>> entering_order_;  //!< (days to catch up, place)
  std::vector<double> entering_popularity_, entering_out_;
  std::vector<std::optional<double>> entering_caught_up_;
  std::vector<std::int64_t> entering_days_;
  DayBuckets exits_;     //!< first window + life_days -> ids of titles in the market
  DayBuckets leaks_;     //!< leak day -> ids (future leaks only; past ones are caught up on entry)
  DayBuckets openings_;  //!< window start -> id * kChannels + channel, titles in the market

  // Active set, structure of arrays: rows [0, n_active_) are titles in the market.
  Eigen::Index n_active_ = 0;
  Eigen::ArrayXd audience_;      //!< a_i
  Eigen::ArrayXd q_eff_;         //!< bass_q * popularity_i
  Eigen::ArrayXd avail_;         //!< A_i(t)
  /// Per row, bits: kLeakStarted (the leak day has come: p_eff = bass_p, else 0 and A stays 0),
  /// kP2P (first public copy from P2P), kPreRelease (flagged pre-release).
  std::vector<std::uint8_t> flags_;
  static constexpr std::uint8_t kLeakStarted = 1, kP2P = 2, kPreRelease = 4;
  void set_flag(Eigen::Index row, std::uint8_t bit, bool on) {
    auto& f = flags_[static_cast<std::size_t>(row)];
    f = static_cast<std::uint8_t>(on ? (f | bit) : (f & ~bit));
  }
  Eigen::ArrayXXd exists_;       //!< E_ic = 1 if the title has a window in channel c (kept only with substitution)
  Eigen::ArrayXXd demand_;       //!< D_ic: counterfactual demand of the day to simulate next, units/day
  Eigen::ArrayXXd pre_factor_;   //!< clamp(1 - pre_c A_i(s_ic) [L_i < s_ic], 0, 1); 1 until window c opens
  std::vector<std::int32_t> row_title_;  //!< title id of each row
  std::vector<std::int32_t> row_group_;  //!< 1 + group slot of each row (0: not leaked)
  // The daily pass runs over blocks of kBlock rows, in parallel (oneTBB): each block writes its
  // own partial sums, which are then added in block order, so the totals are the same bytes
  // whatever the number of threads (and the same as a sequential pass over the blocks).
  static constexpr Eigen::Index kBlock = 1024;  //!< rows per block: ~200 KB of state + scratch, fits L2
  static constexpr Eigen::Index kTokenBlocks = 4;  //!< blocks per token of the daily pipeline
  /// Scratch of one block (one per worker thread, reused every day: no allocation in the hot path).
  struct BlockScratch {
    Eigen::ArrayXXd lost = Eigen::ArrayXXd::Zero(kBlock, kChannels);  //!< D - D' per channel
    Eigen::ArrayXXd net = Eigen::ArrayXXd::Zero(kBlock, kChannels);   //!< D - D'' per channel (lost minus recovered)
    Eigen::ArrayXd p_eff = Eigen::ArrayXd::Zero(kBlock);  //!< bass_p or 0 (from flags_)
    Eigen::ArrayXd p2p = Eigen::ArrayXd::Zero(kBlock);    //!< 1 or 0 (from flags_)
    Eigen::ArrayXd pre = Eigen::ArrayXd::Zero(kBlock);    //!< 1 or 0 (from flags_)
    Eigen::ArrayXd a_new = Eigen::ArrayXd::Zero(kBlock);  //!< today's availability before it is stored
  };
  /// A block's contribution to the day's totals.
  struct BlockResult {
    double counterfactual = 0.0;
    std::array<double, kChannels> lost{};  //!< sum over the block's titles of (D - D'')_c
    double p2p = 0.0;
    double pre = 0.0;
    bool finite = true;
    std::string seatbelt;                  //!< non-empty: an invariant failed (PIRACY_SEATBELTS builds)
  };
  /// Computes block [b0, b0 + m) of day t into `s`, title_loss_ and the returned sums, after
  /// advancing the block's availability to day t (if update_availability), and (unless a value is
  /// not finite) decays the block's demand for day t + 1.
  BlockResult compute_block(std::int32_t t, Eigen::Index b0, Eigen::Index m, BlockScratch& s, bool update_availability);
  /// Availability of active row `row` today, from yesterday's: the update compute_block applies.
  [[nodiscard]] double next_availability(Eigen::Index row) const;
  /// Names the first non-finite quantity of block [b0, b0 + m) (as computed into `s`) and throws.
  [[noreturn]] void throw_non_finite(std::int32_t day, Eigen::Index block_start, Eigen::Index block_rows,
                                     const BlockScratch& s) const;
  tbb::enumerable_thread_specific<BlockScratch> scratch_;
  std::vector<BlockResult> block_results_;  //!< one per block of the day (reused)
  Eigen::ArrayXd title_loss_;    //!< per active row: sum_c price_c (D - D'')_ic, USD, of the day

  // Accounting.
  bool started_ = false;
  std::int32_t last_day_ = 0;
  LossSummary totals_;                    //!< by_group_usd unused here: see group_total_
  std::vector<std::int32_t> group_ids_;   //!< slot -> group id
  std::unordered_map<std::int32_t, std::int32_t> group_slots_;  //!< group id -> slot
  std::vector<double> group_total_;       //!< slot -> cumulative loss
  std::vector<double> group_day_;         //!< 1 + slot -> loss on the day being simulated (scratch; [0]: unleaked)
  std::vector<std::int64_t> slot_rows_;   //!< 1 + slot -> active rows attributed to it ([0]: unleaked)
  std::vector<double> hot_values_;        //!< scratch of scatter_group_losses (kBlock)
  std::vector<double> other_values_;      //!< scratch of scatter_group_losses (kBlock)
  std::vector<std::int32_t> other_slots_; //!< scratch of scatter_group_losses (kBlock)
  /// Adds the losses of block [b0, b0 + m) (title_loss_) to group_day_, each group's in row order;
  /// `hot` > 0: a slot holding a quarter of the rows or more, added in a register.
  void scatter_group_losses(Eigen::Index b0, Eigen::Index m, std::int32_t hot);
  // Daily per-group ledger (sparse): entries [ledger_start_[k], ledger_start_[k+1]) belong to
  // ledger_day_[k]; 16 bytes per (group, day) with a loss. A deque grows without copying.
  struct LedgerEntry {
    std::int32_t slot;
    double loss_usd;
  };
  std::vector<std::int32_t> ledger_day_;
  std::vector<std::size_t> ledger_start_;
  std::deque<LedgerEntry> ledger_;
};

}  // namespace piracy::economics
