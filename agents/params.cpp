// The configuration schema of a scenario: one description per struct serves parsing
// (strict), emitting the resolved configuration and the generated reference
// (docs/CONFIG.md). Sources of default values are cited in `.source`; "calibrated" marks
// values tuned to reproduce the patterns of MODEL.md (P1-P6).
#include "agents/params.hpp"

#include <fmt/format.h>

#include "engine/config.hpp"
#include "engine/error.hpp"

namespace piracy {

using config::Spec;
using config::Visitor;

CategoryTable::CategoryTable() {
  // Daily title rates and formats chosen so that July 2020 volume is about 2,300 Scene
  // releases a day (Le Monde 2020: > 70,000 a month), TV the largest category (MODEL.md s.5).
  c[kMovie] = {96.0, 0.0, 1.0, 0.8, 2.0};  // slots come from MovieParams (web + disc)
  c[kTv] = {770.0, 0.0, 3.5, 0.7, 3.0};
  c[kMusic] = {1120.0, 0.0, 1.0, 0.15, 1.5};
  c[kGames] = {64.0, 0.0, 1.5, 0.6, 0.4};
  c[kSoftware] = {152.0, 0.0, 1.0, 0.2, 0.5};
  c[kEbook] = {304.0, 0.0, 1.0, 0.4, 0.6};
  c[kOther] = {416.0, 0.0, 1.5, 0.5, 1.2};
}

int category_index(const std::string& name) {
  for (int i = 0; i < kCategories; ++i)
    if (name == kCategoryNames[static_cast<std::size_t>(i)]) return i;
  return -1;
}

namespace {
const std::vector<std::string_view> kCategoryChoices = {"movie", "tv",    "music", "games",
                                                         "software", "ebook", "other"};
}

void describe(Visitor& v, CalendarParams& p) {
  v.field("burn_in_start", p.burn_in_start,
          {.doc = "First simulated day; the days before `start` let the population reach its "
                  "steady state and are not reported",
           .unit = "date"});
  v.field("start", p.start, {.doc = "First reported day", .unit = "date"});
  v.field("end", p.end, {.doc = "Last reported day (inclusive); at most 60 years after burn_in_start", .unit = "date"});
  v.check(p.start >= p.burn_in_start, "start", "must not be before burn_in_start");
  v.check(p.end >= p.start, "end", "must not be before start");
  v.check(p.end - p.burn_in_start <= 366 * 60, "end",
          "horizon too long; at most 60 years from burn_in_start");
}

void describe(Visitor& v, CategoryParams& p) {
  v.field("titles_per_day", p.titles_per_day,
          {.doc = "New titles per day", .unit = "titles/day", .min = 0, .max = 1e6,
           .source = "calibrated to ~2,300 Scene releases a day in July 2020 (Le Monde 2020)"});
  v.field("growth_per_year", p.growth_per_year,
          {.doc = "Exponential trend of the title rate (relative to 2020-07-01)", .unit = "1/year",
           .min = -1, .max = 1});
  v.field("slots_per_title", p.slots_per_title,
          {.doc = "Mean release slots (formats) per title; movies use movies.web_slots/disc_slots",
           .unit = "slots", .min = 1, .max = 100});
  v.field("p2p_interest", p.p2p_interest,
          {.doc = "Probability that a slot of this category is also a P2P encoding target",
           .unit = "probability", .min = 0, .max = 1, .source = "calibrated (P6)"});
  v.field("group_weight", p.group_weight,
          {.doc = "Relative weight of the category when a new group chooses its category",
           .min = 0, .max = 1e6});
}

void describe(Visitor& v, CategoryTable& t) {
  for (int i = 0; i < kCategories; ++i)
    v.field(kCategoryNames[static_cast<std::size_t>(i)], t[i],
            {.doc = "Parameters of one release category"});
}

void describe(Visitor& v, MovieParams& p) {
  v.field("web_slots", p.web_slots,
          {.doc = "Mean WEB-DL slots per film, open at the digital date", .unit = "slots",
           .min = 0, .max = 50});
  v.field("disc_slots", p.disc_slots,
          {.doc = "Mean Blu-ray/DVD slots per film, open at the street date (wholesale date for "
                  "groups with a distributor-fraud supplier)",
           .unit = "slots", .min = 0, .max = 50});
  v.field("disc_share", p.disc_share,
          {.doc = "Share of films released on disc", .unit = "probability", .min = 0, .max = 1});
  v.field("disc_after_theatrical_days", p.disc_after_theatrical_days,
          {.doc = "Theatrical-to-disc window", .unit = "days", .min = 0, .max = 3650,
           .source = "averaged 118 days in 2015 (MODEL.md)"});
  v.field("digital_lead_days_2011", p.digital_lead_days_2011,
          {.doc = "Days the digital release precedes the disc street date in 2011 (linear to 2015)",
           .unit = "days", .min = 0, .max = 365, .source = "assumption: near day-and-date in 2011"});
  v.field("digital_lead_days_2015", p.digital_lead_days_2015,
          {.doc = "Days the digital release precedes the disc street date from 2015", .unit = "days",
           .min = 0, .max = 365, .source = "about 24 days (MODEL.md, 2015)"});
  v.field("subscription_after_disc_days", p.subscription_after_disc_days,
          {.doc = "Subscription window after the street date", .unit = "days", .min = 0,
           .max = 3650, .source = "assumption"});
  v.field("wholesale_lead_min_days", p.wholesale_lead_min_days,
          {.doc = "Earliest wholesale shipping, days before street date", .unit = "days", .min = 0,
           .max = 365, .source = "'several weeks before' (DoJ SDNY 2020, Le Monde 2020)"});
  v.field("wholesale_lead_max_days", p.wholesale_lead_max_days,
          {.doc = "Latest wholesale shipping, days before street date", .unit = "days", .min = 0,
           .max = 365, .source = "'several weeks before' (DoJ SDNY 2020, Le Monde 2020)"});
  v.check(p.wholesale_lead_max_days >= p.wholesale_lead_min_days, "wholesale_lead_max_days",
          "must be >= wholesale_lead_min_days");
  v.field("audience_median", p.audience_median,
          {.doc = "Median lifetime legal audience of a film (units sold/viewed)", .unit = "units",
           .min = 0, .max = 1e9, .source = "calibrated (P5)"});
  v.field("audience_sigma", p.audience_sigma,
          {.doc = "Log-sd of film audiences (heavy tail)", .min = 0, .max = 5,
           .source = "assumption: box office is lognormal-like (De Vany & Walls 1999)"});
}

void describe(Visitor& v, ScenerParams& p) {
  v.field("initial_sceners", p.initial_sceners,
          {.doc = "Sceners at burn_in_start", .unit = "agents", .min = 1, .max = 50'000'000});
  v.field("alpha_a", p.alpha_a,
          {.doc = "Beta(a, b) distribution of the weight on recognition alpha: a",
           .min = 0.01, .max = 1000,
           .source = "motives are peer recognition or money (Le Monde 2020); calibrated"});
  v.field("alpha_b", p.alpha_b, {.doc = "Beta(a, b) of alpha: b", .min = 0.01, .max = 1000});
  v.field("alpha_fixed", p.alpha_fixed,
          {.doc = "If >= 0, every ordinary scener has this alpha instead of a Beta draw "
                  "(-1: heterogeneous)",
           .min = -1, .max = 1});
  v.field("skill_sigma", p.skill_sigma,
          {.doc = "Log-sd of skill (median 1)", .min = 0, .max = 5});
  v.field("risk_aversion_sigma", p.risk_aversion_sigma,
          {.doc = "Log-sd of risk aversion rho (median 1)", .min = 0, .max = 5});
  v.field("role_shares", p.role_shares,
          {.doc = "Shares of roles: supplier, ripper/cracker, courier, site operator", .min = 0,
           .max = 1});
  v.check(p.role_shares.size() == 4, "role_shares", "must have 4 entries");
  v.field("role_effort", p.role_effort,
          {.doc = "Release effort by role: supplier, ripper, courier, site operator", .min = 0,
           .max = 100});
  v.check(p.role_effort.size() == 4, "role_effort", "must have 4 entries");
  v.field("beta", p.beta, {.doc = "Logit precision of action choice", .min = 0, .max = 1000});
  v.field("learning_rate", p.learning_rate,
          {.doc = "Step of the reinforcement update of expected payoffs (Erev & Roth 1998)",
           .min = 0, .max = 1});
  v.field("imitation_rate", p.imitation_rate,
          {.doc = "Daily probability of comparing payoffs with a random group peer",
           .unit = "1/day", .min = 0, .max = 1});
  v.field("imitation_weight", p.imitation_weight,
          {.doc = "How far an imitator moves toward a more successful peer's expectations",
           .min = 0, .max = 1});
  v.field("recognition_per_release", p.recognition_per_release,
          {.doc = "Recognition (utility) of one pre on a tier-1 site", .min = 0, .max = 1e6});
  v.field("recognition_decay_per_day", p.recognition_decay_per_day,
          {.doc = "Decay of the recognition stock", .unit = "1/day", .min = 0, .max = 1});
  v.field("utility_per_usd", p.utility_per_usd,
          {.doc = "Utility of one US dollar", .unit = "1/usd", .min = 0, .max = 1e3,
           .source = "calibrated"});
  v.field("outside_option", p.outside_option,
          {.doc = "Utility of retiring from the Scene", .min = -1e6, .max = 1e6,
           .source = "calibrated: a few years' mean career"});
  v.field("entry_per_day", p.entry_per_day,
          {.doc = "Base number of new sceners per day", .unit = "agents/day", .min = 0,
           .max = 1e6});
  v.field("entry_shortfall_elasticity", p.entry_shortfall_elasticity,
          {.doc = "Entry multiplier per unit share of slots nobody released (fewer competitors, "
                  "more recognition to win)",
           .min = 0, .max = 1e3});
  v.field("new_group_share", p.new_group_share,
          {.doc = "Share of entrants who found a new group", .unit = "probability", .min = 0,
           .max = 1});
  v.field("initial_release_expectation", p.initial_release_expectation,
          {.doc = "Initial expected recognition of release work", .min = -1e6, .max = 1e6});
  v.field("initial_money_expectation", p.initial_money_expectation,
          {.doc = "Initial expected money utility of selling access", .min = -1e6, .max = 1e6});
}

void describe(Visitor& v, GroupParams& p) {
  v.field("initial_groups", p.initial_groups,
          {.doc = "Release groups at burn_in_start", .min = 1, .max = 10'000'000});
  v.field("second_category_share", p.second_category_share,
          {.doc = "Share of groups releasing in a second category", .min = 0, .max = 1});
  v.field("web_share", p.web_share, {.doc = "Share of groups with web sources", .min = 0, .max = 1});
  v.field("retail_disc_share", p.retail_disc_share,
          {.doc = "Share of movie/tv groups buying retail discs (street date)", .min = 0, .max = 1});
  v.field("tv_capture_share", p.tv_capture_share,
          {.doc = "Share of tv groups capturing broadcasts (air date)", .min = 0, .max = 1});
  v.field("fraud_share", p.fraud_share,
          {.doc = "Share of other movie groups with a supplier posing as a retailer",
           .min = 0, .max = 1, .source = "Sparks raced other groups buying from the same distributors (DoJ SDNY 2020)"});
  v.field("fraud_title_share", p.fraud_title_share,
          {.doc = "Share of disc titles such a supplier obtains early", .min = 0, .max = 1});
  v.field("slots_per_effort", p.slots_per_effort,
          {.doc = "Release attempts per unit of effort per day", .min = 0, .max = 1e4,
           .source = "calibrated (P1)"});
  v.field("max_affiliations", p.max_affiliations,
          {.doc = "Topsites a group affiliates with at most", .min = 1, .max = 100});
  v.field("affiliation_enabled", p.affiliation_enabled,
          {.doc = "Whether groups seek new topsite affiliations (false switches off part of the "
                  "recovery engine, for experiments)"});
  v.field("affiliation_search_rate", p.affiliation_search_rate,
          {.doc = "Daily chance that a group which has a live site looks for one more (groups "
                  "without one look every day)",
           .unit = "1/day", .min = 0, .max = 1});
  v.field("dissolve_after_idle_days", p.dissolve_after_idle_days,
          {.doc = "A group without releases or active members this long dissolves", .unit = "days",
           .min = 1, .max = 10000});
  v.field("merge_rate", p.merge_rate,
          {.doc = "Daily probability that a group below min_members merges into another",
           .unit = "1/day", .min = 0, .max = 1});
  v.field("min_members", p.min_members,
          {.doc = "Groups with fewer active members seek a merger", .min = 0, .max = 1000});
  v.field("recognition_memory_days", p.recognition_memory_days,
          {.doc = "Memory of a group's recognition (exponential average)", .unit = "days",
           .min = 1, .max = 10000});
}

void describe(Visitor& v, NamedGroup& p) {
  v.field("name", p.name, {.doc = "Group name", .required = true});
  v.field("founded", p.founded, {.doc = "Founding date", .unit = "date"});
  v.field("members", p.members, {.doc = "Members at founding", .min = 1, .max = 10000});
  v.field("categories", p.categories, {.doc = "Release categories", .choices = kCategoryChoices});
  v.field("distributor_fraud", p.distributor_fraud,
          {.doc = "Has a supplier posing as a retailer (discs at the wholesale date)",
           .source = "the Sparks vector (DoJ SDNY 2020; Le Monde 2020)"});
  v.field("fraud_title_share", p.fraud_title_share,
          {.doc = "Share of disc titles obtained at the wholesale date", .min = 0, .max = 1,
           .source = "calibrated (P5)"});
  v.field("skill", p.skill, {.doc = "Skill of its members", .min = 0, .max = 100});
  v.field("alpha", p.alpha, {.doc = "Weight on recognition of its members", .min = 0, .max = 1});
}

void describe(Visitor& v, RaceParams& p) {
  v.field("finish_hours_mean", p.finish_hours_mean,
          {.doc = "Mean time to finish a release at skill 1 and full effort", .unit = "hours",
           .min = 0, .max = 1e4, .exclusive_min = true});
  v.field("dupe_window_minutes", p.dupe_window_minutes,
          {.doc = "Later finishers within this window pre before seeing the winner: nuked dupes",
           .unit = "minutes", .min = 0, .max = 1e5});
}

void describe(Visitor& v, TopsiteParams& p) {
  v.field("tier_sizes", p.tier_sizes,
          {.doc = "Initial sites per rank tier, top tier first (a pyramid)", .unit = "sites",
           .min = 0, .max = 100000,
           .source = "27 ranked sites as 2/3/4/5/6/7 (TorrentFreak 2010), scaled to ~90"});
  v.field("tier_weights", p.tier_weights,
          {.doc = "Recognition weight of a pre by the tier of the group's best site", .min = 0,
           .max = 1e6});
  v.check(!p.tier_sizes.empty() && p.tier_weights.size() == p.tier_sizes.size(), "tier_weights",
          "must have one entry per tier (as many as tier_sizes)");
  v.field("servers_mean", p.servers_mean,
          {.doc = "Mean servers per site (1 + Poisson(mean - 1))", .min = 1, .max = 100,
           .source = "about 60 servers for 29 sites down (Europol / TorrentFreak 2020)"});
  v.field("groups_per_site", p.groups_per_site,
          {.doc = "Affiliated groups a site accepts at most", .min = 1, .max = 100000});
  v.field("countries", p.countries, {.doc = "Countries hosting sites"});
  v.field("country_weights", p.country_weights,
          {.doc = "Relative share of sites per country", .min = 0, .max = 1e6});
  v.check(!p.countries.empty() && p.country_weights.size() == p.countries.size(),
          "country_weights", "must have one entry per country");
  v.field("founding_rate", p.founding_rate,
          {.doc = "Daily site foundings per group lacking a live affiliation", .unit = "1/day",
           .min = 0, .max = 100});
  v.field("rerank_every_days", p.rerank_every_days,
          {.doc = "Sites are re-ranked into tiers by their groups' recognition this often",
           .unit = "days", .min = 1, .max = 10000});
  v.field("operator_closure_hazard", p.operator_closure_hazard,
          {.doc = "Daily chance a site closes for ordinary reasons", .unit = "1/day", .min = 0,
           .max = 1});
}

void describe(Visitor& v, AccessParams& p) {
  v.field("base_price_usd", p.base_price_usd,
          {.doc = "Price of a monthly leech account on a tier-1 site without competing sellers",
           .unit = "usd", .min = 0, .max = 1e6, .source = "assumption"});
  v.field("tier_price", p.tier_price,
          {.doc = "Price factor by tier", .min = 0, .max = 1e3});
  v.field("buyers_per_seller_day", p.buyers_per_seller_day,
          {.doc = "Mean accounts a seller sells per day at reference freshness", .min = 0,
           .max = 1e4});
  v.field("competition", p.competition,
          {.doc = "Price falls as 1/(1 + competition * other sellers on the site)", .min = 0,
           .max = 1e3});
  v.field("account_days", p.account_days,
          {.doc = "Lifetime of a sold account", .unit = "days", .min = 1, .max = 10000});
  v.field("leak_per_account", p.leak_per_account,
          {.doc = "Leak hazard of a release per sold account on its sites", .min = 0, .max = 10,
           .source = "selling access spread Scene content beyond its servers (Le Monde 2020)"});
  v.field("base_leak", p.base_leak,
          {.doc = "Leak probability of a release on sites without sold accounts",
           .unit = "probability", .min = 0, .max = 1});
}

void describe(Visitor& v, P2PParams& p) {
  v.field("initial_groups", p.initial_groups, {.doc = "P2P groups at burn_in_start", .min = 0, .max = 1e7});
  v.field("entry_per_day_2011", p.entry_per_day_2011,
          {.doc = "New P2P groups per day in 2011 (linear to 2020)", .unit = "groups/day",
           .min = 0, .max = 1e4});
  v.field("entry_per_day_2020", p.entry_per_day_2020,
          {.doc = "New P2P groups per day from 2020", .unit = "groups/day", .min = 0, .max = 1e4,
           .source = "calibrated (P6: P2P publishes almost as much fresh content as the Scene)"});
  v.field("exit_hazard", p.exit_hazard,
          {.doc = "Daily exit hazard of a P2P group (raise it to model P2P enforcement)",
           .unit = "1/day", .min = 0, .max = 1});
  v.field("capacity_mean", p.capacity_mean,
          {.doc = "Mean release capacity of a new P2P group", .unit = "releases/day", .min = 0,
           .max = 1e6});
  v.field("capacity_growth", p.capacity_growth,
          {.doc = "Daily capacity growth from recognition and donations", .unit = "1/day",
           .min = 0, .max = 1});
  v.field("shortfall_response", p.shortfall_response,
          {.doc = "Extra P2P effort per unit Scene shortfall (share of usual Scene volume missing)",
           .min = 0, .max = 1e3});
  v.field("prerelease_share", p.prerelease_share,
          {.doc = "Share of P2P groups that leak discs before the street date", .min = 0, .max = 1,
           .source = "some (notably Chinese) trackers share Blu-rays days early (Le Monde 2020)"});
  v.field("prerelease_days", p.prerelease_days,
          {.doc = "How many days before the street date they leak", .unit = "days", .min = 0,
           .max = 365});
  v.field("category_weights", p.category_weights,
          {.doc = "Category weights of P2P groups (movie, tv, music, games, software, ebook, other)",
           .min = 0, .max = 1e6});
  v.check(p.category_weights.size() == kCategories, "category_weights", "must have 7 entries");
}

void describe(Visitor& v, Operation& p) {
  v.field("name", p.name, {.doc = "Name of the operation", .required = true});
  v.field("date", p.date, {.doc = "Date of the raid", .unit = "date", .required = true});
  v.field("servers", p.servers,
          {.doc = "Servers to seize", .min = 0, .max = 1e6,
           .source = "Sparks 2020: about 60 (DoJ / Europol)"});
  v.field("countries", p.countries,
          {.doc = "Countries acting (those hosting most target sites)", .min = 0, .max = 1000,
           .source = "Sparks 2020: about 20 (Le Monde: 'une vingtaine'); Europol: 16 with servers"});
  v.field("arrests", p.arrests, {.doc = "Sceners arrested beyond named-group members", .min = 0, .max = 1e6});
  v.field("target", p.target,
          {.doc = "Targeting rule for sites and arrests",
           .choices = {"named_groups", "top_tiers", "sellers", "suppliers", "random"}});
  v.field("groups", p.groups, {.doc = "Named groups targeted (their members are arrested)"});
  v.field("chill", p.chill,
          {.doc = "Added to every scener's perceived-risk multiplier (chilling effect)", .min = 0,
           .max = 1e6});
  v.field("dark_share", p.dark_share,
          {.doc = "Share of other live sites that go dark as a precaution", .min = 0, .max = 1,
           .source = "'many other sites shut down as a precaution' (TorrentFreak 2020)"});
  v.field("dark_days_mean", p.dark_days_mean,
          {.doc = "Mean days a precautionary site stays dark", .unit = "days", .min = 0, .max = 10000});
  v.field("dark_never_return", p.dark_never_return,
          {.doc = "Share of dark sites that never come back", .min = 0, .max = 1});
}

void describe(Visitor& v, EnforcementParams& p) {
  v.field("detection_per_day", p.detection_per_day,
          {.doc = "Background detection hazard of an active releaser", .unit = "1/day", .min = 0,
           .max = 1});
  v.field("sell_multiplier", p.sell_multiplier,
          {.doc = "Selling access multiplies the detection hazard (money trail)", .min = 0, .max = 1e4});
  v.field("visibility_weight", p.visibility_weight,
          {.doc = "Extra hazard of the most visible sceners: h = base * (1 + w * R / (R + mean R))", .min = 0, .max = 1e4});
  v.field("dormant_factor", p.dormant_factor,
          {.doc = "Hazard of a dormant scener relative to a releaser", .min = 0, .max = 1});
  v.field("perception", p.perception,
          {.doc = "Perceived over true detection hazard", .min = 0, .max = 1e6});
  v.field("sanction", p.sanction,
          {.doc = "Utility cost of an arrest (Bridi: 22 months' prison + $120,000 restitution)",
           .min = 0, .max = 1e9});
  v.field("peer_catch", p.peer_catch,
          {.doc = "Daily chance that peers catch a seller (the code of honour forbids selling)",
           .unit = "1/day", .min = 0, .max = 1});
  v.field("peer_penalty", p.peer_penalty,
          {.doc = "Share of recognition a caught seller loses", .min = 0, .max = 1});
  v.field("peer_ban_days", p.peer_ban_days,
          {.doc = "Days a seller caught by peers is kept from selling", .unit = "days", .min = 0,
           .max = 100000, .source = "assumption"});
  v.field("chill_half_life_days", p.chill_half_life_days,
          {.doc = "Half-life of the chilling effect on perceived risk", .unit = "days", .min = 0,
           .max = 1e5, .exclusive_min = true, .source = "calibrated (P3)"});
  v.field("group_arrest_chill", p.group_arrest_chill,
          {.doc = "Perceived-risk shock to the group peers of an arrested scener", .min = 0, .max = 1e6});
  v.field("expose_site", p.expose_site,
          {.doc = "Chance an arrested operator's or seller's site is seized", .min = 0, .max = 1});
  v.field("screening_from", p.screening_from,
          {.doc = "Distributor screening starts (delays disc access of fraudulent buyers)",
           .unit = "date"});
  v.field("screening_delay_days", p.screening_delay_days,
          {.doc = "Delay of fraudulent disc access under screening", .unit = "days", .min = 0,
           .max = 3650});
  v.field("operations", p.operations, {.doc = "Scheduled enforcement operations"});
}

void describe(Visitor& v, MarketConfig& p) {
  constexpr auto kChannelsDoc = " (theatrical, disc, digital, subscription)";
  v.field("price_usd", p.price_usd,
          {.doc = "Price per unit of legal demand by channel", .unit = "usd", .min = 0, .max = 1e6,
           .source = "ticket $9.16 (NATO 2019); disc/digital/subscription: assumptions"});
  v.field("share", p.share, {.doc = "Share of a film's lifetime audience by channel", .min = 0, .max = 1});
  v.field("decay_per_day", p.decay_per_day,
          {.doc = "Exponential decay of daily demand after a window opens", .unit = "1/day",
           .min = 0, .max = 10, .exclusive_min = true});
  v.field("displacement", p.displacement,
          {.doc = "Legal views displaced per illegal view by channel", .min = 0, .max = 1,
           .source = "EU Commission (Ecorys) 2017: 0.40 recent films, 0.20 second viewings"});
  v.field("pre_release_penalty", p.pre_release_penalty,
          {.doc = "Extra loss of a window that opens after the first public copy", .min = 0, .max = 1,
           .source = "Ma, Montgomery, Singh & Smith 2014: -19.1% box office"});
  v.check(p.price_usd.size() == 4 && p.share.size() == 4 && p.decay_per_day.size() == 4 &&
              p.displacement.size() == 4 && p.pre_release_penalty.size() == 4,
          "price_usd", fmt::format("every per-channel list needs 4 entries{}", kChannelsDoc));
  v.field("piracy_propensity", p.piracy_propensity,
          {.doc = "Share of the audience that would watch a free copy when fully available",
           .min = 0, .max = 1, .source = "assumption"});
  v.field("bass_p", p.bass_p, {.doc = "Bass diffusion innovation coefficient", .unit = "1/day", .min = 0, .max = 1,
                               .source = "Bass 1969"});
  v.field("bass_q", p.bass_q, {.doc = "Bass diffusion imitation coefficient", .unit = "1/day", .min = 0, .max = 10});
  v.field("substitution", p.substitution,
          {.doc = "S[k][j]: share of demand displaced from channel j recovered in channel k",
           .min = 0, .max = 1});
  bool square = p.substitution.size() == 4;
  for (const auto& row : p.substitution) square = square && row.size() == 4;
  v.check(square, "substitution", "must be a 4x4 matrix");
  if (square)
    for (std::size_t j = 0; j < 4; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < 4; ++k) s += p.substitution[k][j];
      v.check(s <= 1.0 + 1e-12, "substitution",
              fmt::format("column {} sums to {} > 1: more demand would shift than was displaced", j, s));
    }
  v.field("life_days", p.life_days,
          {.doc = "Days a title stays in the market after its first window", .unit = "days",
           .min = 1, .max = 100000});
}

void describe(Visitor& v, CounterfactualParams& p) {
  v.field("remove_groups", p.remove_groups,
          {.doc = "Named groups removed in a paired counterfactual run (common random numbers); "
                  "the loss difference is the loss they caused"});
  v.field("from", p.from, {.doc = "Start of the loss comparison window", .unit = "date"});
  v.field("to", p.to, {.doc = "End of the loss comparison window", .unit = "date"});
}

void describe(Visitor& v, RecoveryConfig& p) {
  v.field("pre_window_days", p.pre_window_days,
          {.doc = "Days before an operation averaged for the pre-raid level", .unit = "days",
           .min = 1, .max = 10000});
  v.field("max_days_after", p.max_days_after,
          {.doc = "Days after an operation used by the recovery estimators", .unit = "days",
           .min = 1, .max = 10000});
  v.field("smoothing_days", p.smoothing_days,
          {.doc = "Trailing moving average applied to daily releases first", .unit = "days",
           .min = 1, .max = 365});
}

void describe(Visitor& v, ObservedPoint& p) {
  v.field("date", p.date, {.doc = "Date (monthly figures: the 15th)", .unit = "date", .required = true});
  v.field("value", p.value, {.doc = "Reported Scene releases in the month of `date`", .min = 0, .max = 1e12, .required = true});
  v.field("source", p.source, {.doc = "Where the figure was reported"});
}

void describe(Visitor& v, ScenarioConfig& c) {
  v.field("name", c.name, {.doc = "Scenario name (default output folder piracy-output/<name>)"});
  // The name becomes a folder name: no path separators, spaces or control characters.
  v.check(config::valid_name(c.name), "name", config::kNameRule);
  v.field("description", c.description, {.doc = "Free text"});
  v.field("seed", c.seed, {.doc = "Random seed: same seed and config give byte-identical outputs", .min = 0});
  v.field("threads", c.threads, {.doc = "Worker threads (0: all cores); never changes results", .min = 0, .max = 4096});
  v.field("calendar", c.calendar, {.doc = "Simulated and reported period (one tick = one day)"});
  v.field("categories", c.categories, {.doc = "Release categories"});
  v.field("movies", c.movies, {.doc = "Film windows, formats and audiences"});
  v.field("sceners", c.sceners, {.doc = "Sceners: preferences, learning, entry and exit"});
  v.field("groups", c.groups, {.doc = "Release groups"});
  v.field("named_groups", c.named_groups, {.doc = "Groups declared by name (e.g. SPARKS)"});
  v.field("races", c.races, {.doc = "Release races"});
  v.field("topsites", c.topsites, {.doc = "Topsites"});
  v.field("access", c.access, {.doc = "Market for topsite access and leaks"});
  v.field("p2p", c.p2p, {.doc = "Private-tracker (P2P) release groups"});
  v.field("enforcement", c.enforcement, {.doc = "Detection and scheduled operations"});
  v.field("market", c.market, {.doc = "Legal film market and displacement"});
  v.field("counterfactual", c.counterfactual, {.doc = "Paired what-if run"});
  v.field("recovery", c.recovery, {.doc = "Recovery estimators after each operation"});
  v.field("observed", c.observed, {.doc = "Observed points (e.g. reported releases) for comparison"});

  if (v.mode() != Visitor::Mode::Parse) return;
  const auto& cal = c.calendar;
  const auto in_horizon = [&](Date d) { return d >= cal.burn_in_start && d <= cal.end; };
  const auto horizon = fmt::format("[{}, {}]", cal.burn_in_start.iso(), cal.end.iso());
  for (std::size_t i = 0; i < c.enforcement.operations.size(); ++i) {
    const auto& op = c.enforcement.operations[i];
    v.check(in_horizon(op.date), fmt::format("enforcement.operations[{}].date", i),
            fmt::format("{} is outside the horizon {}", op.date.iso(), horizon));
    for (std::size_t k = 0; k < op.groups.size(); ++k) {
      bool known = false;
      for (const auto& g : c.named_groups) known = known || g.name == op.groups[k];
      v.check(known, fmt::format("enforcement.operations[{}].groups[{}]", i, k),
              fmt::format("'{}' is not a named group; declare it under named_groups", op.groups[k]));
    }
  }
  for (std::size_t i = 0; i < c.named_groups.size(); ++i) {
    v.check(in_horizon(c.named_groups[i].founded), fmt::format("named_groups[{}].founded", i),
            fmt::format("{} is outside the horizon {}", c.named_groups[i].founded.iso(), horizon));
    for (std::size_t j = 0; j < i; ++j)
      v.check(c.named_groups[j].name != c.named_groups[i].name, fmt::format("named_groups[{}].name", i),
              "duplicate group name");
  }
  for (std::size_t k = 0; k < c.counterfactual.remove_groups.size(); ++k) {
    bool known = false;
    for (const auto& g : c.named_groups) known = known || g.name == c.counterfactual.remove_groups[k];
    v.check(known, fmt::format("counterfactual.remove_groups[{}]", k),
            fmt::format("'{}' is not a named group", c.counterfactual.remove_groups[k]));
  }
  v.check(c.access.tier_price.size() == c.topsites.tier_sizes.size(), "access.tier_price",
          "must have one entry per topsite tier (as many as topsites.tier_sizes)");
  v.check(c.counterfactual.to >= c.counterfactual.from, "counterfactual.to", "must not be before from");
}

ScenarioConfig load_scenario(const std::string& path, const std::vector<std::string>& overrides) {
  auto root = config::load_file(path);
  // An empty document would be "every default" (engine/config.hpp); as the file a user names it
  // is far more likely a half-written or truncated file than a request for the defaults.
  if (root.map.empty()) {
    config::fail(root, "",
                 "the file is empty (no configuration keys; a truncated or half-written file?); a scenario "
                 "that changes nothing is written `extends: sparks_2020.yaml`");
  }
  for (const auto& o : overrides) config::apply_override(root, o);
  return config::parse<ScenarioConfig>(root);
}

ScenarioConfig load_default_scenario(const std::vector<std::string>& overrides) {
  auto root = config::load_embedded("sparks_2020.yaml");
  for (const auto& o : overrides) config::apply_override(root, o);
  return config::parse<ScenarioConfig>(root);
}

std::string to_yaml(const ScenarioConfig& c) { return config::emit(c); }

}  // namespace piracy
