#pragma once
// Error hierarchy: thrown inside the library, caught once in main and mapped to exit codes
// (FLAME GPU 2 / Repast HPC style: a message names the place, the value and the fix).
#include <stdexcept>
#include <string>

namespace piracy {

/// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  /// Process exit code this error maps to (2: usage/configuration, 1: runtime failure).
  [[nodiscard]] virtual int exit_code() const noexcept { return 1; }
};

/// Bad configuration (scenario, experiment, calibration file, --set override): exit 2.
class ConfigError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] int exit_code() const noexcept override { return 2; }
};

/// Bad command line: exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] int exit_code() const noexcept override { return 2; }
};

/// The model reached a state that violates an invariant: exit 1.
class ModelError : public Error {
 public:
  using Error::Error;
};

/// NaN or infinity, or a failed numerical method: exit 1.
class NumericalError : public ModelError {
 public:
  using ModelError::ModelError;
};

/// Files that cannot be read or written: exit 1.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A run stopped by SIGINT/SIGTERM: exit 130.
class Interrupted : public Error {
 public:
  using Error::Error;
  [[nodiscard]] int exit_code() const noexcept override { return 130; }
};

}  // namespace piracy
