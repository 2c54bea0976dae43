#include "compress/symmetric_eigen.hpp"

#include <algorithm>
#include <mutex>

#include "core/error.hpp"

extern "C" {
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda, const double* vl,
             const double* vu, const int* il, const int* iu, const double* abstol, int* m, double* w, double* z, const int* ldz,
             int* isuppz, double* work, const int* lwork, int* iwork, const int* liwork, int* info);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a, const int* lda,
            const double* beta, double* c, const int* ldc);
void openblas_set_num_threads(int) __attribute__((weak));
}

namespace moeforge {
namespace {

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  });
}

}  // namespace

EigenPairs largest_eigenpairs(const Eigen::MatrixXd& sym, int count) {
  single_threaded_blas();
  const int n = static_cast<int>(sym.rows());
  Eigen::MatrixXd a = sym;  // dsyevr overwrites its input
  const bool vectors = count > 0;
  const int want = vectors ? std::min(count, n) : n;
  int il = n - want + 1, iu = n, m = 0, info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double vl = 0, vu = 0, abstol = 0, work_query = 0;
  std::vector<double> w(static_cast<size_t>(n));
  Eigen::MatrixXd z(vectors ? n : 1, vectors ? want : 1);
  std::vector<int> isuppz(static_cast<size_t>(2 * std::max(1, want)));
  const char* jobz = vectors ? "V" : "N";
  const char* range = want == n ? "A" : "I";
  int ldz = static_cast<int>(z.rows());
  dsyevr_(jobz, range, "U", &n, a.data(), &n, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &ldz, isuppz.data(), &work_query,
          &lwork, &iwork_query, &liwork, &info);
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevr_(jobz, range, "U", &n, a.data(), &n, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &ldz, isuppz.data(), work.data(),
          &lwork, iwork.data(), &liwork, &info);
  if (info != 0) throw Error(ExitCode::kInternal, "LAPACK dsyevr failed (info " + std::to_string(info) + ")");
  EigenPairs out;
  for (int j = m - 1; j >= 0; --j) out.values.push_back(w[static_cast<size_t>(j)]);  // LAPACK returns them ascending
  if (vectors) out.vectors = z.leftCols(m).rowwise().reverse();
  return out;
}

Eigen::MatrixXd gram(const MatD& a, bool rows_side) {
  single_threaded_blas();
  // Row-major A seen by column-major BLAS is Aᵀ: dsyrk "T" on it gives A·Aᵀ, "N" gives Aᵀ·A.
  const int rows = static_cast<int>(a.rows()), cols = static_cast<int>(a.cols());
  const int n = rows_side ? rows : cols, k = rows_side ? cols : rows, lda = cols;
  const double one = 1, zero = 0;
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
  dsyrk_("U", rows_side ? "T" : "N", &n, &k, &one, a.data(), &lda, &zero, c.data(), &n);
  c.triangularView<Eigen::StrictlyLower>() = c.transpose();
  return c;
}

}  // namespace moeforge
