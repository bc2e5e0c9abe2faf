// Micro-benchmarks (Google Benchmark) of the library's inner kernels: random streams, the
// samplers, the market's daily pass and one whole tick of a small simulation. Each measures
// the real library code path, with inputs shaped like the model's (see each comment).
// docs/PERFORMANCE.md relates these figures to the whole-model throughput of model_bench.
//
//   kernels_bench                               all
//   kernels_bench --benchmark_filter=Sampler    a subset
#include <benchmark/benchmark.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "agents/decision.hpp"
#include "agents/params.hpp"
#include "agents/simulation.hpp"
#include "economics/market.hpp"
#include "engine/exp4.hpp"
#include "engine/rng.hpp"
#include "engine/samplers.hpp"
#include "tests/support/scenarios.hpp"

namespace {

using piracy::Purpose;
using piracy::Stream;
namespace sample = piracy::sample;

// --- random streams ---------------------------------------------------------------------------

/// The decision step's pattern: one Stream per (scener, tick), two uniforms (the logit choice
/// and the imitation coin) -- one Philox4x32-10 block. Items = streams.
void BM_StreamCreateTwoUniforms(benchmark::State& state) {
  std::uint64_t i = 0;
  for (auto _ : state) {
    Stream rng(20200825, Purpose::Decision, i++, 4000);
    double x = rng.uniform();
    x += rng.uniform();
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StreamCreateTwoUniforms);

/// The StreamBatch path a benchmark's argument names (0 portable, 1 SSE2, 2 AVX2, 3 AVX-512), or
/// none, the benchmark skipped, when the CPU lacks it.
std::optional<piracy::StreamBatch::Path> batch_path(benchmark::State& state) {
  const auto path = static_cast<piracy::StreamBatch::Path>(state.range(0));
  if (piracy::StreamBatch::supported(path)) return path;
  state.SkipWithError("this CPU lacks the path");
  return std::nullopt;
}

/// The same streams, their first blocks computed StreamBatch::kLanes at a time (as decide() and
/// the payoff loop do): the same values. Items = streams. Argument: the path (batch_path());
/// fill() itself takes StreamBatch::default_path().
void BM_StreamBatchTwoUniforms(benchmark::State& state) {
  const auto path = batch_path(state);
  if (!path) return;
  std::uint64_t i = 0;
  piracy::StreamBatch batch;
  for (auto _ : state) {
    batch.fill(*path, 20200825, Purpose::Decision, 4000, piracy::StreamBatch::kLanes, [&](std::size_t l) { return i + l; });
    double x = 0.0;
    for (std::size_t l = 0; l < batch.size(); ++l) {
      Stream rng = batch.stream(l);
      x += rng.uniform();
      x += rng.uniform();
    }
    i += piracy::StreamBatch::kLanes;
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(piracy::StreamBatch::kLanes));
}
BENCHMARK(BM_StreamBatchTwoUniforms)->DenseRange(0, 3)->ArgName("path");

/// The ten Philox rounds of one batch alone (what the path changes). Items = streams.
void BM_StreamBatchFill(benchmark::State& state) {
  const auto path = batch_path(state);
  if (!path) return;
  std::uint64_t i = 0;
  piracy::StreamBatch batch;
  for (auto _ : state) {
    batch.fill(*path, 20200825, Purpose::Decision, 4000, piracy::StreamBatch::kLanes, [&](std::size_t l) { return i + l; });
    i += piracy::StreamBatch::kLanes;
    benchmark::DoNotOptimize(batch);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(piracy::StreamBatch::kLanes));
}
BENCHMARK(BM_StreamBatchFill)->DenseRange(0, 3)->ArgName("path");

/// The logit weights of decide() (exp(beta (u_k - umax)), 0 for an unavailable action, 1 for the
/// best, and their sum) at the default scenario's beta = 3: the scalar loop through glibc's exp
/// that decide() ran before (BM_LogitWeightsScalar) and exp4::logit_weights4, which it runs now
/// (BM_LogitWeights4; the same bits, engine/exp4.hpp). A quarter of the actions are unavailable,
/// as selling is for many sceners. Items = choices (four weights each).
std::vector<std::array<double, 4>> logit_utilities() {
  Stream rng(20200825, Purpose::Test, 7, 0);
  std::vector<std::array<double, 4>> u(4096);
  for (auto& a : u)
    for (auto& v : a) v = rng.uniform() < 0.25 ? -HUGE_VAL : 4.0 * rng.uniform() - 2.0;
  for (auto& a : u) a[3] = 0.0;  // the outside option: always available
  return u;
}
constexpr double kBenchBeta = 3.0;
void BM_LogitWeightsScalar(benchmark::State& state) {
  const auto u = logit_utilities();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& a = u[i++ & 4095];
    const double umax = *std::max_element(a.begin(), a.end());
    std::array<double, 4> w{};
    double sum = 0;
    for (std::size_t k = 0; k < 4; ++k)
      sum += (w[k] = a[k] == -HUGE_VAL ? 0.0 : a[k] == umax ? 1.0 : std::exp(kBenchBeta * (a[k] - umax)));
    benchmark::DoNotOptimize(w);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LogitWeightsScalar);
void BM_LogitWeights4(benchmark::State& state) {
  const auto u = logit_utilities();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& a = u[i++ & 4095];
    const double umax = *std::max_element(a.begin(), a.end());
    std::array<double, 4> w{};
    double sum = piracy::exp4::logit_weights4(a.data(), umax, kBenchBeta, w.data());
    benchmark::DoNotOptimize(w);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LogitWeights4);

/// A scener's whole choice (utilities, logit weights, the draw: agents/decision.hpp) at the
/// default scenario's constants, one scener after the other (choose_one, which decide() runs
/// where AVX2 + FMA are missing) and four at a time (choose4_fma, which it runs where they are
/// present; the same actions), and eight at a time below. Items = sceners.
std::vector<piracy::decision::Inputs> decision_inputs() {
  Stream rng(20200825, Purpose::Test, 11, 0);
  std::vector<piracy::decision::Inputs> in(4096);
  for (auto& v : in) {
    v.alpha = rng.uniform();
    v.rho = 0.5 + rng.uniform();
    v.chill = rng.uniform() < 0.9 ? 0.0 : rng.uniform();
    v.recognition = 5 * rng.uniform();
    for (auto& h : v.hat) h = {static_cast<float>(rng.uniform()), static_cast<float>(rng.uniform())};
    v.release_ok = rng.uniform() < 0.9;
    v.sell_ok = rng.uniform() < 0.75;
  }
  return in;
}
piracy::decision::Params decision_params() {
  piracy::decision::Params p;
  p.perceived_base = 2e-4;
  p.sanction = 200;
  p.sell_multiplier = 2;
  p.peer_catch = 0.02;
  p.peer_penalty = 0.5;
  p.dormant_factor = 0.1;
  p.outside_option = 0.05;
  p.beta = kBenchBeta;
  return p;
}
void BM_DecisionOne(benchmark::State& state) {
  const auto in = decision_inputs();
  const auto p = decision_params();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t k = i++ & 4095;
    benchmark::DoNotOptimize(piracy::decision::choose_one(in[k], p, 0.25 + 0.5 * static_cast<double>(k & 1)));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecisionOne);
#if PIRACY_EXP4_X86
/// Lanes sceners at a time: choose4_fma (4, where AVX2 + FMA are present) or choose8_avx512 (8,
/// which decide() runs where the random streams take their AVX-512 path); the same actions.
template <std::size_t Lanes>
void BM_DecisionLanes(benchmark::State& state) {
  if (!(Lanes == 4 ? piracy::exp4::fma_path() : piracy::exp4::avx512_path())) {
    state.SkipWithError(Lanes == 4 ? "no AVX2 + FMA on this machine" : "no AVX-512F + FMA on this machine");
    return;
  }
  const auto in = decision_inputs();
  const auto p = decision_params();
  std::array<double, Lanes> x{};
  for (std::size_t l = 0; l < Lanes; ++l) x[l] = l % 2 == 0 ? 0.25 : 0.75;
  std::size_t i = 0;
  for (auto _ : state) {
    std::array<int, Lanes> act{};
    const auto* const batch = in.data() + (i & (4096 - Lanes));
    if constexpr (Lanes == 4) benchmark::DoNotOptimize(piracy::decision::choose4_fma(batch, p, x.data(), act.data()));
    else benchmark::DoNotOptimize(piracy::decision::choose8_avx512(batch, p, x.data(), act.data()));
    benchmark::DoNotOptimize(act);
    i += Lanes;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(Lanes));
}
BENCHMARK(BM_DecisionLanes<4>)->Name("BM_DecisionFour");
BENCHMARK(BM_DecisionLanes<8>)->Name("BM_DecisionEight");
#endif

/// Long-stream throughput: uniforms from one Stream (2 u32 each, a Philox block per 2).
/// Items = uniforms.
void BM_StreamUniform(benchmark::State& state) {
  Stream rng(20200825, Purpose::Test, 1, 0);
  for (auto _ : state) benchmark::DoNotOptimize(rng.uniform());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StreamUniform);

// --- samplers ---------------------------------------------------------------------------------
// Means and shapes are the model's: Poisson 0.6 (accounts sold by a seller per day: inversion),
// 50 (a category's titles per day: PTRS); binomial inversion and BTRD regimes; Beta(3, 1.5)
// (a new scener's alpha: two Marsaglia-Tsang gammas). Items = variates.

void BM_SamplerPoisson(benchmark::State& state) {
  const double mean = static_cast<double>(state.range(0)) / 10.0;
  Stream rng(20200825, Purpose::Test, 2, 0);
  for (auto _ : state) benchmark::DoNotOptimize(sample::poisson(rng, mean));
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("mean=" + std::to_string(mean).substr(0, 5));
}
BENCHMARK(BM_SamplerPoisson)->Arg(6)->Arg(500)->Arg(50000);  // means 0.6, 50, 5000

void BM_SamplerBinomial(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const double p = 0.3;
  Stream rng(20200825, Purpose::Test, 3, 0);
  for (auto _ : state) benchmark::DoNotOptimize(sample::binomial(rng, n, p));
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("p=0.3");
}
BENCHMARK(BM_SamplerBinomial)->Arg(20)->Arg(1000);  // n p = 6 (inversion), 300 (BTRD)

void BM_SamplerBeta(benchmark::State& state) {
  Stream rng(20200825, Purpose::Test, 4, 0);
  for (auto _ : state) benchmark::DoNotOptimize(sample::beta(rng, 3.0, 1.5));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SamplerBeta);

void BM_SamplerExponential(benchmark::State& state) {
  Stream rng(20200825, Purpose::Test, 5, 0);
  for (auto _ : state) benchmark::DoNotOptimize(sample::exponential(rng, 0.25));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SamplerExponential);

/// The release race's draws for one (group, category, source) range of 1,200 slots, attempted
/// with probability range(0) / 1200: a fresh stream per range, each attempt a geometric gap and an
/// exponential finish time (kTimed), or a gap only (the P2P groups' attempts). In the default run
/// a race range takes ~6 attempts on average (a third 0, a third 1 to 3). Reference: one draw
/// after the other through glibc's log; batched: blocks 4, 8 and 16 at a time and the attempts'
/// logarithms four or eight at a time (the same values: sample::timed_attempts,
/// sample::attempts). Items = ranges.
template <bool kTimed, bool kBatched>
void range_attempts(benchmark::State& state) {
  const double a = static_cast<double>(state.range(0)) / 1200.0;
  const double l1m = std::log1p(-a);
  piracy::StreamBatch blocks;
  std::uint64_t entity = 0;
  double sum = 0;
  for (auto _ : state) {
    const auto timed = [&](std::int64_t k, double h) { sum += h + static_cast<double>(k); };
    const auto gap_only = [&](std::int64_t k) { sum += static_cast<double>(k); };
    if constexpr (kTimed && kBatched) sample::timed_attempts(blocks, 20200825, Purpose::Race, ++entity, 7, 0, 1200, l1m, 2.0, timed);
    else if constexpr (kTimed) sample::timed_attempts_reference(20200825, Purpose::Race, ++entity, 7, 0, 1200, l1m, 2.0, timed);
    else if constexpr (kBatched) sample::attempts(blocks, 20200825, Purpose::P2P, ++entity, 7, 0, 1200, l1m, gap_only);
    else sample::attempts_reference(20200825, Purpose::P2P, ++entity, 7, 0, 1200, l1m, gap_only);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
void BM_RaceAttemptsReference(benchmark::State& state) { range_attempts<true, false>(state); }
BENCHMARK(BM_RaceAttemptsReference)->Arg(1)->Arg(6)->Arg(50)->ArgName("mean_attempts");
void BM_RaceAttempts(benchmark::State& state) { range_attempts<true, true>(state); }
BENCHMARK(BM_RaceAttempts)->Arg(1)->Arg(6)->Arg(50)->ArgName("mean_attempts");
void BM_P2PAttemptsReference(benchmark::State& state) { range_attempts<false, false>(state); }
BENCHMARK(BM_P2PAttemptsReference)->Arg(1)->Arg(6)->Arg(50)->ArgName("mean_attempts");
void BM_P2PAttempts(benchmark::State& state) { range_attempts<false, true>(state); }
BENCHMARK(BM_P2PAttempts)->Arg(1)->Arg(6)->Arg(50)->ArgName("mean_attempts");

/// AliasTable::assign on `range(0)` heavy-tailed weights, into a reused table: the table of
/// groups that homeless sceners join, rebuilt every day (~111,000 groups at 1M sceners).
void BM_AliasTableAssign(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<double> w(n);
  Stream ws(20200825, Purpose::Test, 6, 0);
  for (auto& x : w) x = 1.0 + sample::lognormal(ws, 0.0, 1.5);
  sample::AliasTable table;
  for (auto _ : state) {
    table.assign(w);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AliasTableAssign)->Arg(300)->Arg(111000)->Unit(benchmark::kMicrosecond);

// --- market -----------------------------------------------------------------------------------

/// How the benchmark's leaked titles are attributed to groups.
enum class Attribution {
  Spread,    //!< half the titles leak, by 50 groups in turn
  Dominant,  //!< as in the default run: ~60% leak from one slot (the P2P groups'), ~15% from 50 groups, ~25% never
};

/// economics::Market::step on a steady state of `range(0)` titles in the market: titles live
/// life_days = 730 days, so 20,000 titles need ~27.4 new ones a day (the default scenario's
/// films at 60/day give ~44,000; its benchmark-scaled 10k-scener world ~73,000). Every step
/// also adds that day's titles (four windows, as the model's films have) and leaks some of
/// them (`attribution`), so entry, window openings and Bass diffusion all run. Items = title-days.
void market_step(benchmark::State& state, Attribution attribution) {
  const auto target = static_cast<double>(state.range(0));
  auto params = piracy::economics::default_market_params();
  params.life_days = 730;
  piracy::economics::Market market(params);
  const double per_day = target / params.life_days;
  Stream rng(20200825, Purpose::Market, 6, 0);
  std::int32_t day = 20000;
  double owed = 0;
  auto add_day = [&](std::int32_t first_window, std::int32_t leak_day) {
    owed += per_day;
    for (; owed >= 1.0; owed -= 1.0) {
      piracy::economics::MarketTitle t;
      t.audience = sample::lognormal(rng, std::log(2500.0), 2.0);
      t.window_start = {first_window, first_window + 118, first_window + 94, first_window + 238};
      const auto id = market.add_title(t);
      if (attribution == Attribution::Spread) {
        if (sample::bernoulli(rng, 0.5)) market.record_leak(id, leak_day, {static_cast<std::int32_t>(id % 50), false, false});
      } else {
        const double u = rng.uniform();
        if (u < 0.60) market.record_leak(id, leak_day, {-1, true, false});
        else if (u < 0.75) market.record_leak(id, leak_day, {static_cast<std::int32_t>(id % 50), false, false});
      }
    }
  };
  // Pre-fill: titles that opened over the last life_days days (caught up on the first step).
  for (std::int32_t d = day - params.life_days + 1; d <= day; ++d) add_day(d, d + 1);
  market.step(day);
  for (auto _ : state) {
    ++day;
    add_day(day, day);
    benchmark::DoNotOptimize(market.step(day));
  }
  state.counters["active_titles"] = market.active_titles();
  state.counters["settled_titles"] = market.settled_titles();  // carried in sums (docs/PERFORMANCE.md 15)
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(market.active_titles()));
}
void BM_MarketStep(benchmark::State& state) { market_step(state, Attribution::Spread); }
BENCHMARK(BM_MarketStep)->Arg(20000)->Arg(70000)->Unit(benchmark::kMicrosecond);  // 70,000: the default run from 2010

/// BM_MarketStep with the default run's attribution of losses (docs/PERFORMANCE.md 13): one slot
/// holds most leaked titles, which is what the per-group scatter's register path is for.
void BM_MarketStepDominant(benchmark::State& state) { market_step(state, Attribution::Dominant); }
BENCHMARK(BM_MarketStepDominant)->Arg(70000)->Unit(benchmark::kMicrosecond);

// --- one tick of the model ----------------------------------------------------------------------

/// Simulation::step of tests/support/scenarios.hpp small_scenario (600 initial sceners, 70
/// groups, a tenth of the default title rates), on range(0) threads. The scener decision step
/// and the release race are private, so this measures the whole tick (sources, decisions,
/// race, access market, P2P, enforcement, structural change, market, recording). A simulation
/// that reaches its end is rebuilt outside the timing. Items = ticks.
void BM_SimulationStepSmall(benchmark::State& state) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(state.range(0)));
  const auto cfg = piracy::testing::small_scenario();
  auto sim = std::make_unique<piracy::Simulation>(cfg);
  // Start after the first year so that the population is near its steady state.
  for (int t = 0; t < 365; ++t) sim->step();
  for (auto _ : state) {
    if (sim->tick() >= sim->ticks()) {
      state.PauseTiming();
      sim = std::make_unique<piracy::Simulation>(cfg);
      for (int t = 0; t < 365; ++t) sim->step();
      state.ResumeTiming();
    }
    sim->step();
  }
  state.SetItemsProcessed(state.iterations());
}
// Real time: with 2 threads the CPU time of the main thread alone would flatter the figure.
BENCHMARK(BM_SimulationStepSmall)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
