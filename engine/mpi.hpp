#pragma once
// A thin, optional MPI layer for experiments (engine/experiment.hpp): rank 0 plans and writes,
// every rank computes its share of the runs and sends each finished run to rank 0.
//
// Everything MPI is behind PIRACY_WITH_MPI (CMake option, ON when an MPI C++ implementation is
// found). Without it, or when the program was not started by an MPI launcher, a Session is the
// single rank 0 of a world of size 1 and no MPI function is ever called -- so `piracy-abm
// experiment` behaves the same with or without MPI, and a plain start never pays for (or trips
// over) MPI singleton initialisation.
//
// Threading: MPI is initialised with MPI_THREAD_FUNNELED and only the thread that created the
// Session calls MPI; the simulations run on TBB worker threads and hand their results to it.
#include <optional>
#include <string>
#include <vector>

namespace piracy::mpi {

/// True when this build has MPI support (PIRACY_WITH_MPI).
[[nodiscard]] bool compiled_with_mpi() noexcept;

/// True when the process was started by an MPI launcher: one of OMPI_COMM_WORLD_SIZE (Open MPI),
/// PMIX_RANK (PMIx: Open MPI 4+, Slurm) or PMI_SIZE (MPICH/Hydra) is set in the environment.
[[nodiscard]] bool launched_by_mpi() noexcept;

/// Message tags between ranks.
inline constexpr int kTagResult = 1;  //!< one finished run (a journal line), rank k -> 0
inline constexpr int kTagDone = 2;    //!< rank k finished its share: {"status": code, "error": text}

class Session {
 public:
  /// Initialises MPI when compiled_with_mpi() and launched_by_mpi(); otherwise rank 0 of 1.
  /// Throws IoError when MPI_Init_thread fails or cannot give MPI_THREAD_FUNNELED.
  Session();
  ~Session();  ///< MPI_Finalize when this Session initialised MPI
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] bool active() const { return active_; }  //!< MPI was initialised

  /// Collective: rank 0's `text` replaces `text` on every rank. No-op for a world of size 1.
  void broadcast(std::string& text) const;
  /// Collective: every rank's `text`, in rank order, on every rank; {text} for a world of size 1.
  /// Used by calibrate and sensitivity, where every rank runs the same optimiser and needs every
  /// rank's results to take the same next step (see engine/calibration.hpp).
  [[nodiscard]] std::vector<std::string> all_gather(const std::string& text) const;
  /// Blocking send of `text` to rank 0 with `tag` (ranks > 0 only).
  void send_to_root(int tag, const std::string& text) const;

  struct Message {
    int source = 0;
    int tag = 0;
    std::string text;
  };
  /// Rank 0: the next message that has arrived from any rank, without blocking; nullopt if none.
  [[nodiscard]] std::optional<Message> poll() const;

  /// MPI_Abort on every rank (a last resort; never returns). Plain std::exit without MPI.
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  bool active_ = false;
};

}  // namespace piracy::mpi
