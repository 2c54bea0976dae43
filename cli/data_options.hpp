// Options every verb that reads calibration or evaluation data shares (--data, --bytes, the text
// options --tokenizer, --split-lines, --field, and the window options), and turning them into
// token windows for a model. --data takes token-id files and text files alike (see is_text_data);
// text goes through the model's tokenizer, or --tokenizer.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/params.hpp"
#include "text/token_data.hpp"

namespace moeforge {

ParamTable data_params();    // --data, --bytes, the text and the window options
ParamTable window_params();  // --tokenizer, --split-lines, --field, --chat-template, --seq-len, --max-tokens, --id-width
bool has_data(const ParamValues& p);
// The options that decide the windows (recorded with calibration statistics, compared on merge).
nlohmann::json window_options_record(const ParamValues& p);
// `model` is the checkpoint whose tokenizer reads text files (loaded only when one is given).
DataSet load_dataset(const ParamValues& p, int64_t vocab, const std::filesystem::path& model);
// The files of one list option (ids or text) or its byte twin, in order; at most one may be given.
std::vector<DataFile> load_files(const ParamValues& p, const std::string& ids_key, const std::string& bytes_key, int64_t vocab,
                                 const std::filesystem::path& model, bool allow_empty = false);

}  // namespace moeforge
