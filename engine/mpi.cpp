#include "engine/mpi.hpp"

#include <fmt/format.h>

#include <climits>
#include <cstdlib>

#include "engine/error.hpp"

#ifdef PIRACY_WITH_MPI
// The C API only: the MPI-2 C++ bindings are deprecated (removed in MPI-3) and noisy.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace piracy::mpi {

bool compiled_with_mpi() noexcept {
#ifdef PIRACY_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

#ifdef PIRACY_WITH_MPI

namespace {
void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw IoError(fmt::format("MPI: {} failed: {}", what, std::string(text, static_cast<std::size_t>(len))));
  }
}
}  // namespace

Session::Session() {
  if (!launched_by_mpi()) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized != 0) throw IoError("MPI: already initialised (one piracy::mpi::Session per process)");
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  active_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    active_ = false;
    throw IoError("MPI: the library cannot give MPI_THREAD_FUNNELED (needed: simulations run on worker threads)");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Session::~Session() {
  if (active_) MPI_Finalize();
}

void Session::broadcast(std::string& text) const {
  if (!active_ || size_ == 1) return;
  if (text.size() > static_cast<std::size_t>(INT_MAX)) throw IoError("MPI: message above 2 GiB");
  int length = static_cast<int>(text.size());
  check(MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  text.resize(static_cast<std::size_t>(length));
  check(MPI_Bcast(text.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

std::vector<std::string> Session::all_gather(const std::string& text) const {
  if (!active_ || size_ == 1) return {text};
  if (text.size() > static_cast<std::size_t>(INT_MAX)) throw IoError("MPI: message above 2 GiB");
  const int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
  check(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  long long total = 0;
  for (std::size_t k = 0; k < lengths.size(); ++k) {
    offsets[k] = static_cast<int>(total);
    total += lengths[k];
    if (total > INT_MAX) throw IoError("MPI: gathered messages above 2 GiB");
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check(MPI_Allgatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
  std::vector<std::string> out;
  for (std::size_t k = 0; k < lengths.size(); ++k)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[k]), static_cast<std::size_t>(lengths[k])));
  return out;
}

void Session::send_to_root(int tag, const std::string& text) const {
  if (!active_) return;
  if (text.size() > static_cast<std::size_t>(INT_MAX)) throw IoError("MPI: message above 2 GiB");
  check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, tag, MPI_COMM_WORLD), "MPI_Send");
}

std::optional<Session::Message> Session::poll() const {
  if (!active_ || size_ == 1) return std::nullopt;
  int flag = 0;
  MPI_Status status{};
  check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (flag == 0) return std::nullopt;
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  Message m;
  m.source = status.MPI_SOURCE;
  m.tag = status.MPI_TAG;
  m.text.resize(static_cast<std::size_t>(count));
  check(MPI_Recv(m.text.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "MPI_Recv");
  return m;
}

void Session::abort(int code) const {
  if (active_) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

#else  // !PIRACY_WITH_MPI: a world of one rank.

Session::Session() = default;
Session::~Session() = default;
void Session::broadcast(std::string&) const {}
std::vector<std::string> Session::all_gather(const std::string& text) const { return {text}; }
void Session::send_to_root(int, const std::string&) const {}
std::optional<Session::Message> Session::poll() const { return std::nullopt; }
void Session::abort(int code) const { std::exit(code); }

#endif

}  // namespace piracy::mpi
