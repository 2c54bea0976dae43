// Options every verb that reads calibration or evaluation data shares (--data, --bytes,
// --seq-len, --max-tokens, --id-width), and turning them into a DataSet for a model.
#pragma once
#include "core/params.hpp"
#include "model/token_data.hpp"

namespace moeforge {

ParamTable data_params();
bool has_data(const ParamValues& p);
DataSet load_dataset(const ParamValues& p, int64_t vocab);

}  // namespace moeforge
