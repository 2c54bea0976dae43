// The dense matrix types shared by the engine, the statistics and the merging code: row-major like
// the checkpoints' tensors, float32 for activations and weights, float64 for accumulated statistics
// and decompositions.
#pragma once
#include <Eigen/Dense>

namespace moeforge {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecD = Eigen::VectorXd;

}  // namespace moeforge
