// Options every verb that reads calibration or evaluation data shares (--data, --bytes,
// --seq-len, --max-tokens, --id-width), and turning them into a DataSet for a model.
#pragma once
#include "core/params.hpp"
#include "model/token_data.hpp"

namespace moeforge {

ParamTable data_params();    // --data, --bytes and the window options
ParamTable window_params();  // --seq-len, --max-tokens, --id-width
bool has_data(const ParamValues& p);
DataSet load_dataset(const ParamValues& p, int64_t vocab);
// The files of one list option (token ids) or its byte twin, in order; at most one may be given.
std::vector<DataFile> load_files(const ParamValues& p, const std::string& ids_key, const std::string& bytes_key, int64_t vocab,
                                 bool allow_empty = false);

}  // namespace moeforge
