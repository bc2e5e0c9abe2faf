#pragma once
// Cooperative interruption: SIGINT and SIGTERM only set a flag (the one thing a signal handler
// may safely do, POSIX.1-2017 2.4.3 "async-signal-safe functions"); the simulation loop polls it
// once per tick with throw_if_interrupted(), so the stack unwinds normally, destructors run and
// an uncommitted OutputDir removes its staging directory -- a stopped run leaves no half result.
//
// A second signal while the first is still pending restores the default action and re-raises
// it, so pressing Ctrl-C twice always stops a program that is stuck somewhere it does not poll
// (at the price of leaving a `.<name>.tmp-*` staging directory behind).

namespace piracy {

/// Installs the handlers for SIGINT and SIGTERM (idempotent).
void install_interrupt_handlers();

/// True once SIGINT or SIGTERM arrived after install_interrupt_handlers().
[[nodiscard]] bool interrupt_requested() noexcept;

/// The number of the signal that requested the interruption, 0 if none.
[[nodiscard]] int interrupt_signal() noexcept;

/// Throws piracy::Interrupted("interrupted by signal N") when an interruption was requested.
/// Cheap (one relaxed atomic load): call it every tick.
void throw_if_interrupted();

/// Clears the flag so that tests can raise signals one after another.
void reset_interrupt_for_tests() noexcept;

}  // namespace piracy
