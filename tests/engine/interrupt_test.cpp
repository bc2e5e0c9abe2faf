#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "engine/error.hpp"
#include "engine/interrupt.hpp"

namespace {
/// Gives SIGINT and SIGTERM back their default action, so that the test runner itself stays
/// interruptible by one Ctrl-C after these tests.
void restore_default_handlers() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGINT, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
}
}  // namespace

TEST_CASE("SIGINT and SIGTERM set the interrupt flag", "[engine][output]") {
  piracy::install_interrupt_handlers();
  piracy::reset_interrupt_for_tests();
  CHECK_FALSE(piracy::interrupt_requested());
  CHECK_NOTHROW(piracy::throw_if_interrupted());

  const int sig = GENERATE(SIGINT, SIGTERM);
  // raise() runs the handler before it returns (POSIX: the signal is sent to the calling thread).
  REQUIRE(raise(sig) == 0);
  CHECK(piracy::interrupt_requested());
  CHECK(piracy::interrupt_signal() == sig);
  try {
    piracy::throw_if_interrupted();
    FAIL("expected Interrupted");
  } catch (const piracy::Interrupted& e) {
    CHECK(std::string(e.what()) == "interrupted by signal " + std::to_string(sig));
    CHECK(e.exit_code() == 130);
  }
  piracy::reset_interrupt_for_tests();
  CHECK_FALSE(piracy::interrupt_requested());
  CHECK(piracy::interrupt_signal() == 0);
  restore_default_handlers();
}

TEST_CASE("a second SIGINT terminates the process", "[engine][output]") {
  // In a child process, so that the test runner survives.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    piracy::install_interrupt_handlers();
    piracy::reset_interrupt_for_tests();
    raise(SIGINT);                                  // sets the flag
    if (!piracy::interrupt_requested()) _exit(3);
    raise(SIGINT);                                  // must kill
    _exit(4);                                       // reached only if it did not
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) {
    CHECK(WTERMSIG(status) == SIGINT);
  } else {
    INFO("child exit status " << WEXITSTATUS(status));
    CHECK(false);
  }
}
