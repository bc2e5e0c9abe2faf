#include "engine/interrupt.hpp"

#include <signal.h>

#include <atomic>
#include <string>

#include "engine/error.hpp"

namespace piracy {
namespace {

// A lock-free atomic is async-signal-safe to access (C++17 [support.signal]/3); a plain
// volatile sig_atomic_t would be too, but an atomic also orders the flag for worker threads.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal flag must be lock-free");

extern "C" void on_interrupt_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig, std::memory_order_relaxed)) {
    // Second signal: the user insists. Restore the default action; the re-raised signal is
    // blocked until this handler returns and then terminates the process with the usual status.
    // sigaction and raise are both on the POSIX list of async-signal-safe functions.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(sig, &fallback, nullptr);
    raise(sig);
  }
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: a read or write interrupted by Ctrl-C resumes instead of failing with EINTR;
  // the flag is acted on at the next poll.
  action.sa_flags = SA_RESTART;
  for (const int sig : {SIGINT, SIGTERM}) {
    if (sigaction(sig, &action, nullptr) != 0) {
      throw IoError("cannot install the handler for signal " + std::to_string(sig));
    }
  }
}

bool interrupt_requested() noexcept { return g_signal.load(std::memory_order_relaxed) != 0; }

int interrupt_signal() noexcept { return g_signal.load(std::memory_order_relaxed); }

void throw_if_interrupted() {
  const int sig = g_signal.load(std::memory_order_relaxed);
  if (sig != 0) throw Interrupted("interrupted by signal " + std::to_string(sig));
}

void reset_interrupt_for_tests() noexcept { g_signal.store(0, std::memory_order_relaxed); }

}  // namespace piracy
