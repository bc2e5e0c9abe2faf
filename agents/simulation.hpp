#pragma once
// The runtime (FLAME GPU 2's third layer): steps the state of a scenario day by day.
// Process order per tick (MODEL.md section 3; docs/ODD.md "Process overview"):
//   1 sources open  2 scener decisions (parallel)  3 release races  4 access market & leaks,
//   P2P releases  5 enforcement  6 structural change  7 market (at the same time as 5-6, or in run()
//   as the agents' next day)  8 recording.
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/params.hpp"
#include "agents/state.hpp"
#include "economics/market.hpp"
#include "engine/rng.hpp"
#include "engine/samplers.hpp"
#include "engine/series.hpp"

namespace piracy {

struct OperationOutcome {
  std::string name;
  Date date;
  int servers_seized = 0;
  int sites_seized = 0;
  int countries = 0;
  int arrests = 0;
  int sites_dark = 0;
};

struct GroupRecord {
  std::int32_t id;
  std::string name;
  std::int32_t founded_tick;
  std::int32_t dissolved_tick;  //!< -1 if alive at the end
  std::int64_t releases;
  double recognition_peak;
};

class Simulation {
 public:
  /// `removed_groups`: named groups that never exist (paired counterfactual runs).
  explicit Simulation(const ScenarioConfig& cfg, std::vector<std::string> removed_groups = {});
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  /// Runs every remaining tick. `on_tick(done, total)` is called after each tick.
  ///
  /// With more than one usable thread the market runs one day behind the agents: the market's
  /// day t (which only consumes the titles and leaks the agents hand it that day) is computed at
  /// the same time as the agents' day t + 1, and the last day's market is computed before run()
  /// returns. The outputs are the same bytes as step() after step() (the market's arithmetic
  /// and its inputs are the same; docs/PERFORMANCE.md 11). While run() is in progress, on_tick
  /// sees the agents one day ahead of the market: it must not read the market or the series'
  /// market columns (run_scenario and the experiment runner only poll for interrupts and report
  /// progress).
  template <class F>
  void run(F&& on_tick) {
    while (tick_ < n_ticks_) {
      advance(/*lag_market=*/true);
      on_tick(tick_, n_ticks_);
    }
    finish_market();
  }
  void run() {
    run([](std::int64_t, std::int64_t) {});
  }
  /// Advances one tick; when it returns, everything of that tick is done (the market too).
  void step();

  [[nodiscard]] std::int32_t tick() const { return tick_; }
  [[nodiscard]] std::int32_t ticks() const { return n_ticks_; }
  [[nodiscard]] Date date_of(std::int32_t tick) const { return cfg_.calendar.burn_in_start + tick; }
  [[nodiscard]] std::int32_t tick_of(Date d) const { return d - cfg_.calendar.burn_in_start; }
  [[nodiscard]] const ScenarioConfig& config() const { return cfg_; }
  /// Daily series of the reported period [calendar.start, calendar.end].
  [[nodiscard]] const SeriesTable& series() const { return *series_; }
  [[nodiscard]] const EventLog& events() const { return events_; }
  [[nodiscard]] const Sceners& sceners() const { return sc_; }
  [[nodiscard]] const std::vector<Group>& groups() const { return groups_; }
  [[nodiscard]] const std::vector<Topsite>& sites() const { return sites_; }
  [[nodiscard]] const std::vector<P2PGroup>& p2p_groups() const { return p2p_; }
  [[nodiscard]] const std::vector<OperationOutcome>& operations() const { return op_outcomes_; }
  [[nodiscard]] const economics::Market& market() const { return *market_; }
  [[nodiscard]] std::vector<GroupRecord> group_records() const;
  /// Scene releases pre'd by each named group (id -> count) over the reported period.
  [[nodiscard]] std::int64_t named_group_releases(const std::string& name) const;
  [[nodiscard]] std::int32_t named_group_id(const std::string& name) const;  //!< -1 if absent

  /// The phases of a tick: the agents' phases in the order they run, then the market, then the
  /// ticks' wall time. The market runs at the same time as the agents' enforcement and
  /// structural change (step()), or as the whole of the agents' next day (run() with more than
  /// one thread), so agents + market - tick is the time the two overlapped.
  enum Phase : int {
    kPhaseOpenSources, kPhaseDecide, kPhaseAggregate, kPhaseRace, kPhaseAccessP2P, kPhaseEnforcement,
    kPhaseStructural, kPhaseRecord, kPhaseMarket, kPhaseTick, kPhases
  };
  /// True for the agents' phases (those before kPhaseMarket).
  [[nodiscard]] static constexpr bool phase_of_agents(int phase) noexcept { return phase >= 0 && phase < kPhaseMarket; }
  /// "open_sources", "decide", ... (as in the benchmark's breakdown).
  [[nodiscard]] static const char* phase_name(int phase) noexcept;
  /// Wall seconds spent in each phase since construction (a dozen steady-clock reads a tick).
  /// For benchmarks: which phases scale with threads and which do not (docs/PERFORMANCE.md 3);
  /// never part of the outputs.
  [[nodiscard]] const std::array<double, kPhases>& phase_seconds() const { return phase_s_; }
  /// The part of phase_seconds()[kPhaseOpenSources] spent on the market's task, beside the
  /// agents' day (run() on 2+ threads; docs/PERFORMANCE.md 25).
  [[nodiscard]] double sources_beside_seconds() const { return sources_beside_s_; }

  /// Checks the member index against one built whole from the sceners after every daily update
  /// (a ModelError names the first difference). On in seatbelt builds; tests turn it on.
  void verify_member_index(bool on) { verify_members_ = on; }

 private:
  void init_population();
  void open_sources();
  void decide();
  void aggregate_decisions();
  static constexpr int kSources = 5;
  struct SlotIndex {
    std::array<std::array<std::pair<std::int64_t, std::int64_t>, kSources>, kCategories> range{};
    std::array<double, kCategories> open{};
  };
  [[nodiscard]] SlotIndex index_slots(bool count_wholesale) const;
  /// Where today's slots of each (category, source) begin in slots_ (key category x kSources +
  /// source; the last entry is slots_.size()), written by open_sources().
  std::array<std::size_t, kCategories * kSources + 1> slot_start_{};
  void race();
  void access_market_and_leaks();
  void p2p_releases();
  void enforcement();
  void run_operation(const Operation& op);
  void structural_change();
  void rebuild_members();
  std::int64_t affiliate();
  [[nodiscard]] std::vector<double> tier_cuts() const;
  /// The market's calls of one day, in the order the agents made them (open_sources() adds the
  /// day's titles, race() and p2p_releases() then record the day's first public copies): the
  /// agents hand them over instead of calling the market, so that the market can compute that
  /// day while the agents go on with the next (run()). Two of them, by tick parity.
  struct MarketDay {
    std::vector<economics::MarketTitle> titles;
    struct Leak {
      std::int32_t title;
      std::int32_t day;
      economics::LeakSource source;
    };
    std::vector<Leak> leaks;
  };
  std::array<MarketDay, 2> market_days_;
  std::int32_t market_titles_ = 0;          //!< titles handed to the market (ids 0, 1, ...)
  std::vector<std::uint8_t> title_leaked_;  //!< by title: its first public copy is handed over
  std::int32_t market_lag_tick_ = -1;       //!< a tick whose market day is still to compute (run()), -1 none
  std::size_t market_col_ = 0;              //!< first of the series' market columns (the last three)
  void record_leak(std::int32_t title, const economics::LeakSource& source);
  /// The market's day `tick`: hands over the day's titles and leaks, steps the market over the
  /// reported period, writes and checks the series' market columns. Reads and writes nothing the
  /// agents touch (the handed-over day, the market, the market columns of the day's row).
  void market_day(std::int32_t tick);
  void advance(bool lag_market);
  /// A named group's name (the scenario's named_groups entry it was made from).
  [[nodiscard]] const std::string& named_group_name(const Group& g) const;
  /// The day's open_sources() in run() on 2+ threads, while decide() runs on the calling thread
  /// (below its kInline size; beside a parallel decide() it took a core from it). It depends on
  /// no agent's state of the day (the calendar, the title counter, the day's streams), and
  /// decide() and the aggregation read nothing it writes, so it runs on the market's task,
  /// beside them, unless the agents' thread reaches the race first and runs it itself: whoever
  /// claims it runs it (no one waits for a task that has not started), the race waits for it to
  /// be done (docs/PERFORMANCE.md 25).
  struct SourcesTask {
    std::atomic<int> state{0};  //!< 0 unclaimed, 1 running, 2 done
    std::exception_ptr error;
    double seconds = 0;         //!< its wall time
  };
  bool claim_sources(SourcesTask& task);  //!< runs it if unclaimed; true if this call ran it
  void await_sources(SourcesTask& task);  //!< after it: runs it or waits for it, rethrows its error
  double sources_beside_s_ = 0;          //!< open_sources() wall time on the market's task
  void agents_day_start(SourcesTask* sources = nullptr);  //!< the agents' phases up to P2P releases
  void agents_day_end();    //!< record and the numerical guard
  void finish_market();     //!< computes a lagging market day, if any
  void record();
  void check_invariants() const;
  // Numerical guards (issue 9; agents/numerical_guard.cpp): NaN or infinity stops the run with
  // NumericalError naming the quantity, the tick (and date) and the entity.
  void guard_finite();  //!< per tick, after record(): the day's aggregates (one pass over ~40 doubles)
  [[noreturn]] void throw_non_finite_utility(std::size_t scener, const std::array<double, kActions>& u) const;

  // helpers
  std::int32_t new_scener(Role role, std::int32_t group, float skill, float alpha, Purpose purpose,
                          std::uint64_t entity_key);
  std::int32_t new_group(std::uint8_t categories, bool fraud, std::uint64_t entity_key);
  std::int32_t new_site(int tier, std::uint64_t entity_key);
  void schedule(std::int32_t tick, const SlotBatch& b);
  void arrest(std::int32_t scener, const std::string& why);
  void seize(std::int32_t site, const std::string& why, int servers = -1);  //!< -1: all its servers
  void dissolve(std::int32_t group, std::int32_t heir);
  [[nodiscard]] std::span<const std::int32_t> members_of(std::int32_t group) const;
  void go_dark(std::int32_t site, double days_mean, double never_return, Stream& rng);
  [[nodiscard]] double scene_shortfall() const;

  ScenarioConfig cfg_;
  std::vector<std::string> removed_;
  std::int32_t n_ticks_ = 0;
  std::int32_t tick_ = 0;
  std::array<double, kPhases> phase_s_{};
  std::int32_t report_first_ = 0;  //!< tick of calendar.start
  bool initializing_ = false;       //!< initial affiliations are made whatever the switches

  Sceners sc_;
  /// Ids of the Active sceners, ascending. It may also hold ids that stopped being Active since
  /// the last compact_active() (every loop over it checks the status, as the loops over all
  /// sceners did), and it never misses an Active one: new sceners are appended (their ids are the
  /// largest), named members are inserted when their group is founded. Passes over sceners go
  /// through it rather than through every scener ever created (by 2021 the default run has six
  /// entries per Active scener: docs/PERFORMANCE.md 5.2); ascending order keeps every sum and
  /// every sequential effect in id order, so outputs are the bytes they were.
  LargeVector<std::int32_t> active_;
  void compact_active();  //!< drops the ids that are no longer Active
  /// Ids of the alive groups, ascending, on the same terms as active_ (a superset: a group that
  /// dissolved stays listed until the next aggregate_decisions(), which resets its daily fields
  /// one last time, as the passes over every group did each day, and then drops it). Groups
  /// ever founded outnumber alive ones ten to one by 2021 in the default run.
  std::vector<std::int32_t> alive_groups_;
  std::vector<Group> groups_;
  std::vector<Topsite> sites_;
  std::vector<P2PGroup> p2p_;
  std::vector<std::vector<SlotBatch>> calendar_;  //!< batches by tick they open
  LargeVector<Slot> slots_;                       //!< slots open today, sorted by category/source
  /// One group's attempt at one of today's slots (race()); 16 bytes (slot indices are < 2^31:
  /// open_sources() checks).
  struct RaceAttempt {
    double hours;
    std::int32_t slot;
    std::int32_t group;
  };
  std::vector<std::uint8_t> site_live_;                   //!< decide(): 1 if the site is up (scratch)
  std::vector<std::int32_t> group_sell_site_;             //!< decide(): the group's best live site, -1 none
  std::vector<double> group_leak_p_;                      //!< decide(): each listed group's leak probability today, read by race() (ODD 7.2)
  /// enforcement(): a group's recognition earned today and its members' release effort (scratch).
  struct GroupPay {
    double recognition_today = 0;
    double effort = 0;
  };
  LargeVector<GroupPay> group_pay_;
  /// enforcement(): per fixed chunk of the Active list, its sellers and (imitator, peer) pairs
  /// in id order and its retirements; the sceners that look at a peer today (scratch).
  struct EnforcementChunk {
    std::vector<std::int32_t> sellers, imitators;
    std::vector<std::pair<std::int32_t, std::int32_t>> imitations;
    std::int64_t retired = 0;
    std::vector<std::int32_t> left;  //!< retired sceners who were in a group (for the member index)
  };
  std::vector<EnforcementChunk> enf_chunks_;
  /// aggregate_decisions(): today's release effort, releasing members and supplier flag per group (scratch).
  struct GroupTally {
    double effort = 0;
    std::int32_t active_members = 0;
    bool supplier_active = false;
  };
  LargeVector<GroupTally> group_tally_;
  /// aggregate_decisions(): per fixed chunk of the Active list, its releasing members (ids) and
  /// its sellers' sites in id order, and its dormant and other active counts (scratch).
  struct AggregateChunk {
    /// releasing[0, n_releasing): the chunk's releasing members (the vector is as long as the
    /// chunk, written without a branch); sellers: the sellers' sites.
    std::vector<std::int32_t> releasing, sellers;
    std::size_t n_releasing = 0;
    std::int64_t dormant = 0, active = 0;
  };
  std::vector<AggregateChunk> agg_chunks_;
  std::vector<std::vector<std::int32_t>> homeless_chunks_;  //!< structural_change(): homeless sceners per chunk (scratch)
  /// structural_change() scratch: the alive unnamed groups and their pick weights (mergers,
  /// homeless sceners), each listed group's weight or whether it draws a merger, the homeless
  /// sceners and the group each joins (-1: founds one).
  std::vector<std::int32_t> pick_ids_;
  std::vector<double> pick_weight_, listed_weight_;
  std::vector<std::uint8_t> listed_counted_, listed_flag_;
  std::vector<std::int32_t> homeless_, homeless_target_;
  sample::AliasTable homeless_pick_;  //!< the groups homeless sceners join, by weight
  /// Fills pick_ids_ and pick_weight_ (the alive, unnamed groups in list order, weight
  /// 1 + recognition + members), reading the Groups in parallel.
  void weigh_groups();
  /// affiliate() scratch: (recognition, id) of the alive groups, open sites by tier, whether
  /// each listed group searches today, each site's state (live, dark, gone for good), a group's
  /// own candidate positions.
  std::vector<std::pair<double, std::int32_t>> aff_ranked_;
  std::vector<std::vector<std::int32_t>> aff_open_by_tier_;
  std::vector<std::uint8_t> aff_search_, aff_site_state_;
  std::vector<std::int32_t> aff_searching_;  //!< places in the list of the groups that search today
  std::vector<std::size_t> aff_own_pos_;
  std::vector<std::vector<RaceAttempt>> race_attempts_;  //!< by chunk of 256 listed groups (reused from day to day)
  LargeVector<double> race_best_;                         //!< by slot: earliest finish (scratch)
  LargeVector<std::int32_t> race_winner_;                 //!< by slot: winning group (scratch)
  LargeVector<std::array<std::int32_t, 2>> race_group_wins_;  //!< by group: today's wins and leaked wins (scratch)
  /// Wholesale slots nobody got in race(): the title, its street tick, the number of slots.
  struct RaceCarry {
    std::int32_t title;
    std::int32_t street;
    std::uint16_t slots;
  };
  /// race(): one fixed chunk of today's slots, counted in parallel, read in slot order.
  struct RaceChunk {
    std::int64_t scene = 0;                       //!< won releases
    std::int64_t leaks = 0;                       //!< won releases that leaked
    std::array<std::int64_t, kCategories> scene_by_cat{};
    std::vector<std::int32_t> first_leaks;        //!< leaked slots whose title had not leaked before today
    std::vector<RaceCarry> carry;                 //!< unclaimed wholesale slots, by title in slot order
  };
  std::vector<RaceChunk> race_chunks_;            //!< (reused from day to day)
  std::vector<RaceCarry> race_carry_;             //!< the day's unclaimed wholesale slots (scratch)
  std::unique_ptr<economics::Market> market_;
  std::vector<std::int32_t> named_ids_;           //!< group id of each named group (-1 removed)
  std::vector<std::int32_t> named_first_scener_;  //!< first reserved scener id of each named group
  std::vector<std::int32_t> op_order_;            //!< operations sorted by date
  std::vector<OperationOutcome> op_outcomes_;

  // Members by group, as of the day's rebuild_members(): the Active sceners of group g, in id
  // order, are member_ids_[member_start_[g] .. member_start_[g+1]). Built by a counting sort
  // once, then kept up to date from the day's changes (docs/PERFORMANCE.md 25).
  LargeVector<std::int32_t> member_start_, member_ids_;
  LargeVector<std::int32_t> member_start_next_, member_ids_next_;  //!< rebuild_members() scratch
  LargeVector<std::int32_t> member_fill_;                          //!< rebuild_members_full() scratch
  /// A scener whose membership key (member_key()) may have changed since the last rebuild, with
  /// the key it had then (its first entry in the log counts).
  struct MemberChange {
    std::int32_t id;
    std::int32_t old_key;
  };
  std::vector<MemberChange> member_log_;
  std::vector<std::int32_t> member_groups_touched_;     //!< groups whose `members` a merger changed
  std::vector<std::uint64_t> member_out_, member_in_;   //!< rebuild_members() scratch: (group << 32) | id
  std::vector<std::int32_t> member_affected_;           //!< rebuild_members() scratch
  bool members_built_ = false;
  bool verify_members_ = false;
  /// The group a scener counts as a member of in the index: its group if Active, else -1.
  [[nodiscard]] std::int32_t member_key(std::size_t i) const {
    return sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active) && sc_.group[i] >= 0 ? sc_.group[i] : -1;
  }
  /// Called before a scener's group or status changes (after the first build: before it the
  /// index is built whole).
  void note_member(std::size_t i) {
    if (members_built_) member_log_.push_back({static_cast<std::int32_t>(i), member_key(i)});
  }
  void rebuild_members_full(LargeVector<std::int32_t>& start, LargeVector<std::int32_t>& ids,
                            LargeVector<std::int32_t>& fill) const;

  // Daily tallies (reset each tick).
  struct Tally {
    std::array<double, kCategories> scene_by_cat{};
    double scene = 0, p2p = 0, dupes = 0, leaks_pre = 0, leaks = 0;
    double sellers = 0, active = 0, dormant = 0, retired = 0, entered = 0, arrested = 0;
    double groups_formed = 0, groups_dissolved = 0, sites_founded = 0, slots = 0;
    double sold_new = 0, money_usd = 0;
  } t_;
  double releases_ema_short_ = 0, releases_ema_long_ = 0;  //!< for the shortfall signal
  std::array<double, kCategories> cat_ema_short_{}, cat_ema_long_{};
  std::int64_t arrested_total_ = 0;
  std::int64_t seized_total_ = 0;

  std::unique_ptr<SeriesTable> series_;
  EventLog events_;
};

/// One complete run: the scenario, plus the paired counterfactual run with
/// `counterfactual.remove_groups` when set. Returns the summary (headline figures).
struct RunOutputs {
  std::unique_ptr<Simulation> sim;
  std::unique_ptr<Simulation> counterfactual;  //!< null when no group is removed
  nlohmann::json summary;
};
RunOutputs run_scenario(const ScenarioConfig& cfg, int threads, bool progress);

/// Runs `sim` and, if not null, `counterfactual` to their last tick. The two are independent
/// (neither reads the other's state), so when the current task arena has more than one thread
/// they run at the same time, each also using the threads the other leaves idle; with one
/// thread, one after the other. Every output is the same bytes either way (each run's own
/// passes are deterministic whatever the thread count). `on_tick(which, done, total)` is called
/// after each tick of run `which` (0: sim, 1: counterfactual), possibly from two threads at
/// once: it must be thread-safe. An error is reported as running them in sequence would:
/// `sim`'s first. When `sim` fails, the counterfactual is stopped at its next tick; when the
/// counterfactual fails, `sim` still runs to its end (or its own error).
void run_paired(Simulation& sim, Simulation* counterfactual,
                const std::function<void(int which, std::int64_t done, std::int64_t total)>& on_tick);

/// Headline summary of a finished simulation (and its paired counterfactual, if any).
nlohmann::json summarize(const Simulation& sim, const Simulation* counterfactual);

}  // namespace piracy
