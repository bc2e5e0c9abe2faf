#pragma once
// State of the agents: plain data (FLAME GPU 2's "state" layer). Sceners, the many
// parallel agents, are kept in structure-of-arrays form because the decision step streams
// through them every day; groups, topsites and P2P groups are few and kept as structs.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "agents/params.hpp"
#include "engine/large_pages.hpp"

namespace piracy {

enum class Role : std::uint8_t { Supplier = 0, Ripper = 1, Courier = 2, Operator = 3 };
inline constexpr std::array<const char*, 4> kRoleNames = {"supplier", "ripper", "courier",
                                                          "site_operator"};

/// Daily actions of a scener (MODEL.md section 3 step 2).
enum Action : std::uint8_t { kRelease = 0, kSell = 1, kDormant = 2, kRetire = 3, kActions = 4 };
/// Actions whose payoffs are learned (retiring ends the career).
inline constexpr int kLearnedActions = 3;

enum class ScenerStatus : std::uint8_t {
  Absent = 0,    //!< reserved for a named group not yet founded (or removed in a counterfactual)
  Active = 1,
  Retired = 2,
  Arrested = 3,
};

/// A scener's learned payoffs of one action: recognition (R^) and money utility (M^).
struct Expectation {
  float r = 0.0f;  //!< learned recognition
  float m = 0.0f;  //!< learned money utility
};
using Expectations = std::array<Expectation, kLearnedActions>;

/// One array of the sceners' state: at 1M sceners each is 1-24 MB, in huge pages
/// (engine/large_pages.hpp; docs/PERFORMANCE.md 20).
template <class T>
using ScenerArray = LargeVector<T>;

/// Sceners in structure-of-arrays form: index = scener id = random-stream entity.
struct Sceners {
  ScenerArray<std::int32_t> group;       //!< -1: between groups
  ScenerArray<std::uint8_t> role;        //!< Role
  ScenerArray<std::uint8_t> status;      //!< ScenerStatus
  ScenerArray<std::uint8_t> action;      //!< today's Action
  ScenerArray<std::uint8_t> imitate;     //!< today's imitation draw succeeded
  ScenerArray<float> skill;              //!< release productivity (median 1)
  ScenerArray<float> alpha;              //!< weight on recognition, 1 - alpha on money
  ScenerArray<float> rho;                //!< risk aversion
  ScenerArray<float> recognition;        //!< recognition stock (utility units)
  ScenerArray<float> chill;              //!< perceived-risk multiplier above 1 (decays)
  /// Learned expectations by action, interleaved per scener (r, m of release, sell, dormant:
  /// 24 bytes): decide() reads all six and enforcement() the chosen action's pair, so one array
  /// is one memory stream where six separate arrays were six (docs/PERFORMANCE.md 15).
  ScenerArray<Expectations> hat;
  ScenerArray<float> payoff_ema;         //!< recent realised utility (for imitation)
  ScenerArray<float> money_usd;          //!< cumulative money from selling access
  ScenerArray<std::int32_t> site;        //!< site operated (-1 none)
  ScenerArray<std::int32_t> ban_until;   //!< tick until which peers keep a caught seller out
  ScenerArray<std::int32_t> sell_site;   //!< site a seller sells on today (-1 none)
  ScenerArray<std::uint16_t> sold_today; //!< accounts sold today
  ScenerArray<std::uint8_t> detected;    //!< detected today by background enforcement
  ScenerArray<std::uint8_t> caught;      //!< caught selling by peers today

  [[nodiscard]] std::size_t size() const { return group.size(); }
  void resize(std::size_t n);
};

enum class SiteStatus : std::uint8_t { Up = 0, Dark = 1, Seized = 2, Closed = 3 };

struct Topsite {
  std::int32_t id = 0;
  int tier = 0;                    //!< 0 = top tier
  int country = 0;
  int servers = 1;
  int servers_seized = 0;          //!< servers taken by operations or exposure
  SiteStatus status = SiteStatus::Up;
  std::int32_t founded_tick = 0;
  std::int32_t reopen_tick = -1;   //!< when a dark site comes back
  std::vector<std::int32_t> groups;
  double sold_accounts = 0;        //!< live sold leech accounts
  int sellers = 0;                 //!< sellers today
  int sellers_prev = 0;            //!< sellers yesterday (prices use it: no race within a day)
  double fresh_ema = 0;            //!< pre'd releases per day (exponential average)
  double leak_ema = 0;             //!< share of its releases that leaked (exponential average)
  double price_usd = 0;            //!< account price today
  int fresh_today = 0;
  int leaked_today = 0;
  [[nodiscard]] bool live() const { return status == SiteStatus::Up; }
};

// Laid out for the daily passes over every listed group (at 1M sceners ~111,000 of them, which
// outgrow the caches): the fields they read and write share the first cache line, the site list
// and the lifetime records take the second. A 160-byte Group with its fields in declaration
// order spread them over three lines (docs/PERFORMANCE.md 22). Where a field lives changes no value.
struct alignas(64) Group {
  // First cache line (64 bytes): read or written every day.
  std::int32_t id = 0;
  int best_tier = -1;              //!< best tier among live affiliated sites (-1: none live)
  std::int32_t last_release_tick = 0;
  int members = 0;
  int active_members = 0;
  int wins_today = 0;
  bool named = false;
  bool alive = false;
  std::uint8_t categories = 0;     //!< bit mask over Category
  bool web = true, retail_disc = false, tv_capture = false, fraud = false;
  bool supplier_active = false;
  double recognition = 0;          //!< exponential average of recognition earned per day
  double effort = 0;               //!< sum of release effort of members releasing today
  double recognition_today = 0;
  double fraud_title_share = 0;
  // Second cache line.
  std::vector<std::int32_t> sites; //!< affiliated sites (live or dark)
  double recognition_peak = 0;     //!< highest value of `recognition` so far
  std::int64_t releases = 0;       //!< lifetime pres
  std::int32_t founded_tick = 0;
  std::int32_t dissolved_tick = -1;
  std::int32_t named_index = -1;   //!< named groups: index in the scenario's named_groups (their name)
  [[nodiscard]] bool has_category(int c) const { return (categories >> c) & 1u; }
};
static_assert(sizeof(Group) == 128, "Group: two cache lines (see above)");

struct P2PGroup {
  std::int32_t id = 0;
  bool alive = true;
  std::uint8_t categories = 0;
  double capacity = 0;             //!< releases per day
  bool prerelease = false;         //!< leaks discs before the street date
  std::int32_t founded_tick = 0;
};

/// Release sources (MODEL.md section 3 step 1).
enum class Source : std::uint8_t {
  Web = 0,         //!< web/digital (and generic sources for non-video categories)
  Disc = 1,        //!< retail disc at the street date
  Tv = 2,          //!< broadcast capture at the air date
  Wholesale = 3,   //!< disc at the wholesale date: distributor-fraud groups only
  P2PPrerelease = 4,  //!< disc leaked days before the street date by some P2P trackers
};

/// A batch of release slots of one title that open on one day.
struct SlotBatch {
  std::int32_t title = -1;         //!< market title (films), -1 otherwise
  std::uint8_t category = 0;
  Source source = Source::Web;
  std::uint16_t slots = 1;
  std::int32_t street_tick = -1;   //!< films: street date (for wholesale carry-over)
};

/// One slot open today (24 bytes: at 1M sceners ~830,000 slots open a day).
struct Slot {
  /// Identity of the slot that does not depend on which other slots are open today, so that
  /// its random draws stay the same in paired runs (common random numbers).
  std::uint64_t uid;
  std::int32_t title;
  std::int32_t street_tick;
  std::uint8_t category;
  Source source;
  bool pre_release;                //!< opens before the official date of its source
};

}  // namespace piracy
