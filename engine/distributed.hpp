// Several processes of one MPI job (mpirun, Slurm's srun) sharing one command. moeforge becomes
// MPI-aware when built with MOEFORGE_MPI (CMake, on by default when Open MPI is found) and
// joins a job only when a launcher started it (it sees OMPI_COMM_WORLD_SIZE, PMIX_RANK or
// PMI_RANK; MOEFORGE_MPI=0 opts out). Without MPI, or outside a job, there is one process of rank 0.
// Every rank parses the same command and runs the same code; calibration and evaluation split
// their windows across ranks and combine the results in rank order, so every rank ends with
// the same numbers and rank 0 writes and prints.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace moeforge {

struct ProcessGroup {
  int rank = 0, size = 1;
  bool is_root() const { return rank == 0; }
};
const ProcessGroup& processes();

// "Open MPI v4.1.4 ..." when built with MPI, empty otherwise.
std::string mpi_library();

// Joins the MPI job for the lifetime of main() when started by a launcher (see above).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();  // MPI_Finalize: waits for the other ranks
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Ends every rank of the job with `status` (MPI_Abort); outside a job it only returns.
void abort_all_processes(int status);

// Returns when every rank has called it (MPI_Barrier); nothing outside a job.
void wait_for_all_processes();

// Folds the equally long buffers of all ranks in rank order on rank 0 — combine(offset, values,
// n) folds rank r's values [offset, offset + n) into the buffer, r = 1, 2, … — then sends rank
// 0's result to every rank. With one process, nothing happens. Throws when the lengths differ.
void reduce_in_rank_order(std::vector<double>& buffer, const std::function<void(size_t offset, const double* values, size_t n)>& combine);

}  // namespace moeforge
