#include "text/text_data.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {
namespace {

using json = nlohmann::json;

// Message content: a string, or a list of parts whose "text" entries are concatenated.
std::string message_content(const json& content, const std::string& at) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content)
      if (part.is_object() && part.contains("text") && part["text"].is_string()) out += part["text"].get<std::string>();
    return out;
  }
  throw FormatError(at + ": message content must be a string or a list of {\"type\": \"text\", \"text\": ...} parts, found " + content.dump());
}

// One message through a chat template: {role} and {content} replaced, "\n" as a newline.
std::string apply_template(const std::string& format, const std::string& role, const std::string& content) {
  std::string out;
  for (size_t i = 0; i < format.size();) {
    if (format.compare(i, 6, "{role}") == 0) out += role, i += 6;
    else if (format.compare(i, 9, "{content}") == 0) out += content, i += 9;
    else if (format.compare(i, 2, "\\n") == 0) out += '\n', i += 2;
    else out += format[i++];
  }
  return out;
}

// Chat messages: one "role: content" line per message, or each through the chat template.
std::string render_messages(const json& messages, const std::string& at, const std::string& chat_template) {
  if (!messages.is_array()) throw FormatError(at + ": \"messages\" must be a list of {\"role\", \"content\"}, found " + messages.dump());
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    std::string here = at + ": messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw FormatError(here + ": expected {\"role\": string, \"content\": ...}, found " + m.dump());
    std::string role = m["role"].get<std::string>();
    std::string content = message_content(m.contains("content") ? m["content"] : json(), here + ".content");
    if (!chat_template.empty()) out += apply_template(chat_template, role, content);
    else out += (i > 0 ? "\n" : "") + role + ": " + content;
  }
  return out;
}

std::string jsonl_document(const std::string& line, const std::string& at, const TextOptions& o) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    throw FormatError(at + ": not valid JSON (" + e.what() + ")");
  }
  if (j.is_object() && j.contains(o.field)) {
    if (!j[o.field].is_string()) throw FormatError(at + ": field \"" + o.field + "\" must be a string, found " + j[o.field].dump().substr(0, 60));
    return j[o.field].get<std::string>();
  }
  if (j.is_object() && j.contains("messages")) return render_messages(j["messages"], at, o.chat_template);
  std::string hint = j.is_object() && j.contains("input_ids") ? " (this line holds token ids, not text)" : " (hint: --field NAME)";
  throw FormatError(at + ": expected a string field \"" + o.field + "\" or a \"messages\" list" + hint);
}

}  // namespace

std::vector<std::string> read_text_documents(const std::filesystem::path& path, const TextOptions& o) {
  require_regular_file(path);
  std::string ext = path.extension().string();
  bool jsonl = ext == ".jsonl" || ext == ".json";
  if (!jsonl && !o.split_lines) return {read_text_file(path)};
  std::vector<std::string> docs;
  std::istringstream in(read_text_file(path));
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    docs.push_back(jsonl ? jsonl_document(line, path.string() + ":" + std::to_string(line_no), o) : line);
  }
  return docs;
}

bool is_text_data(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  if (ext == ".bin") return false;
  if (ext != ".jsonl" && ext != ".json") return true;
  std::istringstream in(read_file_prefix(path, 1 << 20));  // the first record decides
  std::string line;
  while (std::getline(in, line) && line.find_first_not_of(" \t\r") == std::string::npos) {
  }
  auto j = json::parse(line, nullptr, false);
  return !(j.is_array() || (j.is_object() && j.contains("input_ids")));
}

DataFile load_text(const std::filesystem::path& path, const Tokenizer& tok, const TextOptions& o) {
  if (o.seq_len < 1) throw UsageError("--seq-len must be at least 1");
  DataFile f;
  f.path = path.string();
  f.kind = DataKind::kTokenIds;
  const size_t budget = o.max_tokens > 0 ? static_cast<size_t>(o.max_tokens) : SIZE_MAX;
  std::vector<int32_t> stream;
  auto eos = tok.eos();
  for (const auto& doc : read_text_documents(path, o)) {
    if (stream.size() >= budget) break;  // no need to tokenize what will not be used
    if (doc.empty()) continue;           // would be a lone BOS
    if (!stream.empty() && eos) stream.push_back(*eos);
    auto ids = tok.encode_with_specials(doc);
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  stream.resize(std::min(stream.size(), budget));
  f.token_bytes.reserve(stream.size());
  for (int32_t id : stream) {
    if (o.vocab > 0 && id >= o.vocab)
      throw FormatError(path.string() + ": the tokenizer gives token id " + std::to_string(id) + " (\"" + tok.piece(id) +
                        "\"), outside the model's vocabulary [0, " + std::to_string(o.vocab) + "); hint: --tokenizer must be the model's own");
    f.token_bytes.push_back(tok.text_bytes(id));
  }
  for (size_t start = 0; start < stream.size(); start += static_cast<size_t>(o.seq_len))
    f.batch.add_window(stream.data() + start, std::min<int64_t>(o.seq_len, static_cast<int64_t>(stream.size() - start)));
  if (f.batch.windows.empty() && !o.allow_empty) throw FormatError(path.string() + ": no tokens (empty file?)");
  return f;
}

std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, std::string_view prompt) {
  return tok.encode(tok.bos_text() + std::string(prompt));
}

}  // namespace moeforge
