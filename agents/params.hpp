#pragma once
// Description of a scenario: immutable parameters loaded from YAML (FLAME GPU 2's
// "description" layer). Every field is bound to the configuration schema in params.cpp,
// which is also where each default's unit and source are documented.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/date.hpp"

namespace piracy {

namespace config {
class Visitor;
}

/// Release categories of the Scene (MODEL.md section 5: TV is the largest; then movies,
/// music, XXX/other, ebooks, games, software).
enum Category : int { kMovie = 0, kTv, kMusic, kGames, kSoftware, kEbook, kOther, kCategories };
inline constexpr std::array<const char*, kCategories> kCategoryNames = {
    "movie", "tv", "music", "games", "software", "ebook", "other"};

struct CalendarParams {
  Date burn_in_start = *Date::parse("2008-01-01");
  Date start = *Date::parse("2011-01-01");
  Date end = *Date::parse("2021-12-31");
};

struct CategoryParams {
  double titles_per_day = 10;     //!< new titles per day (reference level, July 2020)
  double growth_per_year = 0.0;   //!< exponential trend of the title rate, per year
  double slots_per_title = 1.0;   //!< mean number of release slots (formats) per title, >= 1
  double p2p_interest = 0.5;      //!< share of this category's slots P2P groups also encode
  double group_weight = 1.0;      //!< weight of the category when a new group picks its category
};

/// One entry per category, written in YAML as `categories: {movie: {...}, tv: {...}, ...}`.
struct CategoryTable {
  std::array<CategoryParams, kCategories> c{};
  CategoryTable();
  CategoryParams& operator[](int i) { return c[static_cast<std::size_t>(i)]; }
  const CategoryParams& operator[](int i) const { return c[static_cast<std::size_t>(i)]; }
};

struct MovieParams {
  double web_slots = 3.0;               //!< WEB-DL slots per film at the digital date
  double disc_slots = 4.0;              //!< Blu-ray/DVD slots per film at the street date
  double disc_share = 0.6;              //!< share of films released on disc
  std::int64_t disc_after_theatrical_days = 118;  //!< theatrical-to-disc window
  double digital_lead_days_2011 = 3;    //!< digital date before the disc street date in 2011
  double digital_lead_days_2015 = 24;   //!< ... in 2015 and later
  std::int64_t subscription_after_disc_days = 120;
  std::int64_t wholesale_lead_min_days = 14;  //!< distributors ship discs to retailers this many days early
  std::int64_t wholesale_lead_max_days = 35;
  double audience_median = 2500;       //!< median lifetime legal audience per film (units)
  double audience_sigma = 2.0;          //!< log-sd of the audience (heavy tail)
};

struct ScenerParams {
  std::int64_t initial_sceners = 6000;
  double alpha_a = 3.0;           //!< Beta(a,b) weight on recognition
  double alpha_b = 1.5;
  double alpha_fixed = -1;        //!< >= 0: every scener gets this alpha instead of a Beta draw
  double skill_sigma = 0.5;       //!< log-sd of skill (median 1)
  double risk_aversion_sigma = 0.4;
  std::vector<double> role_shares = {0.10, 0.55, 0.25, 0.10};  //!< supplier, ripper, courier, site operator
  std::vector<double> role_effort = {0.5, 1.0, 0.4, 0.3};       //!< release effort by role
  double beta = 3.0;              //!< logit precision
  double learning_rate = 0.05;    //!< reinforcement learning step
  double imitation_rate = 0.02;   //!< daily probability of comparing with a group peer
  double imitation_weight = 0.5;  //!< how far an imitator moves toward the peer
  double recognition_per_release = 1.0;  //!< utility units per pre, tier 1 site
  double recognition_decay_per_day = 0.002;
  double utility_per_usd = 0.02;
  double outside_option = -1.8;   //!< utility of retiring
  double entry_per_day = 3.0;     //!< base new sceners per day
  double entry_shortfall_elasticity = 8.0;  //!< entry rises with uncovered slots
  double new_group_share = 0.25;  //!< share of entrants who found a new group
  double initial_release_expectation = 0.5;
  double initial_money_expectation = 0.2;
};

struct GroupParams {
  std::int64_t initial_groups = 700;
  double second_category_share = 0.15;
  double web_share = 0.9;         //!< groups with web sources
  double retail_disc_share = 0.6; //!< movie/tv groups that buy retail discs
  double tv_capture_share = 0.8;  //!< tv groups able to capture broadcasts
  double fraud_share = 0.01;      //!< other groups with distributor-fraud suppliers
  double fraud_title_share = 0.03; //!< share of disc slots a fraud supplier obtains early
  double slots_per_effort = 0.7;  //!< release attempts per unit of effort per day
  std::int64_t max_affiliations = 3;
  bool affiliation_enabled = true;  //!< groups may seek new affiliations (off: a test of the recovery engine)
  double affiliation_search_rate = 0.1;  //!< daily chance a group with a live site seeks another
  std::int64_t dissolve_after_idle_days = 60;
  double merge_rate = 0.01;       //!< daily probability a group with < min members merges
  std::int64_t min_members = 3;
  double recognition_memory_days = 90;
};

struct NamedGroup {
  std::string name = "SPARKS";
  Date founded = *Date::parse("2011-01-01");
  std::int64_t members = 8;
  std::vector<std::string> categories = {"movie"};
  bool distributor_fraud = true;
  double fraud_title_share = 0.01;
  double skill = 1.5;
  double alpha = 0.8;
};

struct RaceParams {
  double finish_hours_mean = 6.0;  //!< mean finish time at skill 1
  double dupe_window_minutes = 20; //!< later finishers within this window pre unknowingly: nuked dupes
};

struct TopsiteParams {
  std::vector<std::int64_t> tier_sizes = {4, 7, 11, 16, 22, 30};  //!< initial sites per tier, top first
  std::vector<double> tier_weights = {3.0, 2.2, 1.6, 1.2, 1.0, 0.8};  //!< recognition weight by tier
  double servers_mean = 2.0;       //!< servers per site (1 + Poisson(mean-1))
  std::int64_t groups_per_site = 20;
  std::vector<std::string> countries = {"US", "NL", "DE", "SE", "NO", "CY", "FR", "UK", "CA",
                                        "RO", "PL", "CZ", "DK", "FI", "CH", "LV", "LT", "PT",
                                        "IT", "ES", "BG", "RU", "UA", "SK", "HU"};
  std::vector<double> country_weights = {8, 9, 8, 6, 4, 3, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2, 1.5,
                                         1.5, 1.5, 1.5, 1.5, 3, 2, 1, 1};
  double founding_rate = 0.05;     //!< daily site foundings per unaffiliated group
  std::int64_t rerank_every_days = 30;
  double operator_closure_hazard = 0.0003;  //!< daily chance a site closes for ordinary reasons
};

struct AccessParams {
  double base_price_usd = 30.0;    //!< monthly leech account, tier-1 site, no competition
  std::vector<double> tier_price = {1.0, 0.8, 0.6, 0.45, 0.35, 0.25};
  double buyers_per_seller_day = 0.6;
  double competition = 0.15;       //!< price falls as 1/(1 + c * sellers on the site)
  double account_days = 30;        //!< sold accounts last this long
  double leak_per_account = 0.01;  //!< leak hazard per sold account on the release's sites
  double base_leak = 0.05;         //!< leak probability without sold accounts
};

struct P2PParams {
  std::int64_t initial_groups = 20;
  double entry_per_day_2011 = 0.02;
  double entry_per_day_2020 = 0.16;
  double exit_hazard = 0.0008;
  double capacity_mean = 8.0;      //!< releases per day a P2P group can encode
  double capacity_growth = 0.001;  //!< daily capacity growth from recognition/donations
  double shortfall_response = 2.0; //!< extra effort per unit Scene shortfall
  double prerelease_share = 0.05;  //!< P2P groups with pre-release disc leaks
  std::int64_t prerelease_days = 5;
  std::vector<double> category_weights = {3, 4, 1, 1, 0.3, 0.5, 1};
};

struct Operation {
  std::string name = "operation";
  Date date = *Date::parse("2020-08-25");
  std::int64_t servers = 60;
  std::int64_t countries = 20;
  std::int64_t arrests = 10;
  std::string target = "named_groups";  //!< named_groups | top_tiers | sellers | suppliers | random
  std::vector<std::string> groups = {};
  double chill = 7.0;              //!< added to every scener's perceived-risk multiplier
  double dark_share = 0.55;        //!< share of other live sites that go dark as a precaution
  double dark_days_mean = 60;
  double dark_never_return = 0.15;
};

struct EnforcementParams {
  double detection_per_day = 2e-5;     //!< background detection hazard of an active releaser
  double sell_multiplier = 6.0;        //!< money trail: selling multiplies the hazard
  double visibility_weight = 1.0;      //!< hazard rises with recognition share
  double dormant_factor = 0.1;
  double perception = 5.0;             //!< perceived over true hazard
  double sanction = 2000.0;            //!< utility cost of arrest
  double peer_catch = 0.002;           //!< daily chance peers catch a seller
  double peer_penalty = 0.5;           //!< share of recognition lost when caught
  std::int64_t peer_ban_days = 90;     //!< a caught seller cannot sell for this long
  double chill_half_life_days = 40;
  double group_arrest_chill = 2.0;
  double expose_site = 0.5;            //!< chance an arrested operator's or seller's site is seized
  Date screening_from = *Date::parse("2100-01-01");
  std::int64_t screening_delay_days = 0;
  std::vector<Operation> operations = {};
};

/// Defaults from economics/market.hpp (default_market_params), where each value's source or
/// the word "assumption" is given.
struct MarketConfig {
  std::vector<double> price_usd = {9.16, 20.0, 10.0, 1.0};
  std::vector<double> share = {0.40, 0.10, 0.20, 0.30};
  std::vector<double> decay_per_day = {0.09902102579427789, 0.033007008598092630, 0.016503504299046315,
                                       0.0038508176697507675};  // ln2/7, ln2/21, ln2/42, ln2/180
  std::vector<double> displacement = {0.40, 0.40, 0.40, 0.20};
  std::vector<double> pre_release_penalty = {0.191, 0.191, 0.191, 0.0};
  double piracy_propensity = 0.5;
  double bass_p = 0.05;
  double bass_q = 0.40;
  std::vector<std::vector<double>> substitution = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
  std::int64_t life_days = 730;
};

struct CounterfactualParams {
  std::vector<std::string> remove_groups = {};
  Date from = *Date::parse("2011-01-01");
  Date to = *Date::parse("2020-12-31");
};

struct RecoveryConfig {
  std::int64_t pre_window_days = 60;
  std::int64_t max_days_after = 300;
  std::int64_t smoothing_days = 7;
};

struct ObservedPoint {
  Date date = *Date::parse("2020-07-15");
  double value = 0;
  std::string source = "";
};

struct ScenarioConfig {
  std::string name = "scenario";
  std::string description = "";
  std::uint64_t seed = 1;
  std::int64_t threads = 0;  //!< 0 = all cores
  CalendarParams calendar;
  CategoryTable categories;
  MovieParams movies;
  ScenerParams sceners;
  GroupParams groups;
  std::vector<NamedGroup> named_groups = {};
  RaceParams races;
  TopsiteParams topsites;
  AccessParams access;
  P2PParams p2p;
  EnforcementParams enforcement;
  MarketConfig market;
  CounterfactualParams counterfactual;
  RecoveryConfig recovery;
  std::vector<ObservedPoint> observed = {};
};

void describe(config::Visitor& v, CalendarParams& p);
void describe(config::Visitor& v, CategoryParams& p);
void describe(config::Visitor& v, CategoryTable& p);
void describe(config::Visitor& v, MovieParams& p);
void describe(config::Visitor& v, ScenerParams& p);
void describe(config::Visitor& v, GroupParams& p);
void describe(config::Visitor& v, NamedGroup& p);
void describe(config::Visitor& v, RaceParams& p);
void describe(config::Visitor& v, TopsiteParams& p);
void describe(config::Visitor& v, AccessParams& p);
void describe(config::Visitor& v, P2PParams& p);
void describe(config::Visitor& v, Operation& p);
void describe(config::Visitor& v, EnforcementParams& p);
void describe(config::Visitor& v, MarketConfig& p);
void describe(config::Visitor& v, CounterfactualParams& p);
void describe(config::Visitor& v, RecoveryConfig& p);
void describe(config::Visitor& v, ObservedPoint& p);
void describe(config::Visitor& v, ScenarioConfig& p);

/// Loads a scenario file (with `extends`) and applies --set overrides; throws ConfigError.
ScenarioConfig load_scenario(const std::string& path, const std::vector<std::string>& overrides);
/// The embedded default scenario (configs/sparks_2020.yaml).
ScenarioConfig load_default_scenario(const std::vector<std::string>& overrides);
/// Complete YAML of a resolved scenario (every key), which reloads to the same scenario.
std::string to_yaml(const ScenarioConfig& c);

int category_index(const std::string& name);  //!< -1 if unknown

}  // namespace piracy
