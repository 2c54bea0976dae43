#include "engine/distributed.hpp"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "core/error.hpp"

#ifdef MOEFORGE_WITH_MPI
#include <mpi.h>
#endif

namespace moeforge {
namespace {

ProcessGroup g_group;
[[maybe_unused]] bool g_joined = false;

// Started by mpirun/orterun (Open MPI), or by srun/prun through PMIx or PMI-2.
bool launched_by_mpi() {
  const char* opt = std::getenv("MOEFORGE_MPI");
  if (opt != nullptr && std::string_view(opt) == "0") return false;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// The job size a launcher announces (0 when it does not say).
[[maybe_unused]] long announced_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"})
    if (const char* s = std::getenv(v)) return std::atol(s);
  return 0;
}

// Values per message: bounds the extra memory of a reduction (64 MB) and stays below int counts.
[[maybe_unused]] constexpr size_t kPiece = size_t{1} << 23;

}  // namespace

const ProcessGroup& processes() { return g_group; }

#ifdef MOEFORGE_WITH_MPI

std::string mpi_library() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string s(version, static_cast<size_t>(len));
  return s.substr(0, s.find_first_of(",\n"));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  // Only the main thread calls MPI; OpenMP threads compute between the calls.
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_group.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_group.size);
  g_joined = true;
}

MpiSession::~MpiSession() {
  if (g_joined) MPI_Finalize();
  g_joined = false;
}

void abort_all_processes(int status) {
  if (g_joined && g_group.size > 1) MPI_Abort(MPI_COMM_WORLD, status);
}

void wait_for_all_processes() {
  if (g_joined && g_group.size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void reduce_in_rank_order(std::vector<double>& buffer, const std::function<void(size_t, const double*, size_t)>& combine) {
  if (!g_joined || g_group.size == 1) return;
  unsigned long long n = buffer.size(), root_n = n;
  MPI_Bcast(&root_n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  int same = root_n == n, all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_same)
    throw Error(ExitCode::kInternal, "rank " + std::to_string(g_group.rank) + " holds " + std::to_string(n) + " values to combine, rank 0 " +
                                         std::to_string(root_n) + "; hint: every rank must run the same command on the same files");
  std::vector<double> incoming(std::min<size_t>(n, kPiece));
  for (size_t offset = 0; offset < n; offset += kPiece) {
    int count = static_cast<int>(std::min<size_t>(kPiece, n - offset));
    if (g_group.rank == 0) {
      for (int r = 1; r < g_group.size; ++r) {
        MPI_Recv(incoming.data(), count, MPI_DOUBLE, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        combine(offset, incoming.data(), static_cast<size_t>(count));
      }
    } else {
      MPI_Send(buffer.data() + offset, count, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
    }
    MPI_Bcast(buffer.data() + offset, count, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  }
}

#else

std::string mpi_library() { return {}; }

// Without MPI every rank would compute and write everything: refuse instead.
MpiSession::MpiSession(int*, char***) {
  if (launched_by_mpi() && announced_size() > 1)
    throw UsageError("this moeforge was built without MPI but runs as one of " + std::to_string(announced_size()) +
                     " processes of an MPI job; hint: build with Open MPI (libopenmpi-dev) and -DMOEFORGE_MPI=ON, or run one process");
}
MpiSession::~MpiSession() = default;
void abort_all_processes(int) {}
void wait_for_all_processes() {}
void reduce_in_rank_order(std::vector<double>&, const std::function<void(size_t, const double*, size_t)>&) {}

#endif

}  // namespace moeforge
