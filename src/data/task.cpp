#include "data/task.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "data/random.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace peft::data {

std::vector<size_t> TaskSuite::indices_of_split(const std::string& split) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].split == split) out.push_back(i);
  return out;
}

const Task* TaskSuite::find(const std::string& name) const {
  for (const auto& t : tasks)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::string> compute_label_set(const Task& task) {
  std::set<std::string> distinct;
  size_t n = 0;
  for (const auto* list : {&task.examples, &task.test_examples})
    for (const auto& ex : *list) {
      ++n;
      for (const auto& o : ex.outputs) {
        distinct.insert(o);
        if (distinct.size() > kMaxLabels) return {};
      }
    }
  if (distinct.size() < 2 || n < 2 * distinct.size()) return {};
  return {distinct.begin(), distinct.end()};
}

size_t find_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte or invalid lead (0xc0, 0xc1, 0xf5+)
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += len;
  }
  return std::string::npos;
}

namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] "; keep the readable part on one line.
std::string json_message(const std::exception& e) {
  std::string m = e.what();
  if (!m.empty() && m[0] == '[') {
    const auto close = m.find("] ");
    if (close != std::string::npos) m = m.substr(close + 2);
  }
  std::replace(m.begin(), m.end(), '\n', ' ');
  return m;
}

std::string display(const fs::path& p) { return p.generic_string(); }

void check_utf8(const std::string& text, const std::string& loc) {
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string::npos)
    fail_input(loc + "text is not valid UTF-8 (byte " + std::to_string(bad + 1) + " of the line)");
}

// A required string field of a JSON object.
std::string get_string(const json& obj, const char* key, const std::string& loc) {
  const auto it = obj.find(key);
  if (it == obj.end()) fail_input(loc + "missing field '" + key + "'");
  if (!it->is_string()) fail_input(loc + "field '" + key + "' must be a string");
  return it->get<std::string>();
}

std::vector<std::string> get_string_list(const json& obj, const char* key, const std::string& loc) {
  const auto it = obj.find(key);
  if (it == obj.end()) fail_input(loc + "missing field '" + key + "'");
  if (!it->is_array() || it->empty()) fail_input(loc + "field '" + key + "' must be a non-empty list of strings");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) fail_input(loc + "field '" + key + "' must be a non-empty list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Parses a whole JSON file (layouts a and c, tasks.json); errors name the file and the line.
json parse_json_file(const fs::path& file, std::string* bytes_out = nullptr) {
  const std::string bytes = read_file(file);
  const size_t bad = find_invalid_utf8(bytes);
  if (bad != std::string::npos) {
    const int line = 1 + static_cast<int>(std::count(bytes.begin(), bytes.begin() + static_cast<long>(bad), '\n'));
    fail_input(where(display(file), line) + "text is not valid UTF-8");
  }
  try {
    json j = json::parse(bytes);
    if (bytes_out) *bytes_out = bytes;
    return j;
  } catch (const json::parse_error& e) {
    const size_t pos = std::min(e.byte, bytes.size());
    const int line = 1 + static_cast<int>(std::count(bytes.begin(), bytes.begin() + static_cast<long>(pos > 0 ? pos - 1 : 0), '\n'));
    fail_input(where(display(file), line) + "malformed JSON: " + json_message(e));
  }
}

void finish_task(Task& t, const std::string& file_for_errors) {
  if (t.examples.empty() && t.test_examples.empty()) fail_input(where(file_for_errors) + "no examples");
  t.label_set = compute_label_set(t);
}

std::vector<std::string> read_lines(const fs::path& file) {
  const std::string text = read_file(file);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

}  // namespace

std::vector<Example> read_jsonl_examples(const fs::path& file, std::string* sha256) {
  const std::string text = read_file(file);
  if (sha256) *sha256 = sha256_hex(text);
  const std::string name = display(file);
  std::vector<Example> out;
  int first_line = 0;
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (blank(line)) continue;
    const std::string loc = where(name, line_no);
    check_utf8(line, loc);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      fail_input(loc + "malformed JSON: " + json_message(e));
    }
    if (!j.is_object()) fail_input(loc + "expected a JSON object");
    Example ex;
    ex.id = get_string(j, "id", loc);
    ex.task = get_string(j, "task", loc);
    ex.definition = get_string(j, "definition", loc);
    ex.input = get_string(j, "input", loc);
    ex.outputs = get_string_list(j, "outputs", loc);
    if (!out.empty() && ex.task != out.front().task)
      fail_input(loc + "task '" + ex.task + "' differs from '" + out.front().task + "' on line " +
                 std::to_string(first_line));
    if (out.empty()) first_line = line_no;
    out.push_back(std::move(ex));
  }
  if (out.empty()) fail_input(where(name) + "no examples");
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// (b) JSON Lines layout.

TaskSuite read_jsonl_suite(const fs::path& root) {
  TaskSuite suite;
  suite.root = display(root);
  const fs::path meta_path = root / "tasks.json";
  struct Entry {
    std::string name, split;
    fs::path train_file, test_file;
    json meta;
  };
  std::vector<Entry> entries;
  std::string meta_sha;
  if (fs::exists(meta_path)) {
    std::string bytes;
    const json meta = parse_json_file(meta_path, &bytes);
    const std::string mloc = where(display(meta_path));
    if (!meta.is_object() || !meta.contains("tasks") || !meta["tasks"].is_array())
      fail_input(mloc + "missing field 'tasks' (a list)");
    for (size_t i = 0; i < meta["tasks"].size(); ++i) {
      const json& t = meta["tasks"][i];
      const std::string loc = mloc + "tasks[" + std::to_string(i) + "]: ";
      if (!t.is_object()) fail_input(loc + "expected a JSON object");
      Entry e;
      e.name = get_string(t, "name", loc);
      e.split = get_string(t, "split", loc);
      if (e.split != "train" && e.split != "test") fail_input(loc + "field 'split' must be 'train' or 'test'");
      if (!t.contains("files") || !t["files"].is_object()) fail_input(loc + "missing field 'files'");
      e.train_file = root / get_string(t["files"], "train", loc + "files: ");
      if (e.split == "test") e.test_file = root / get_string(t["files"], "test", loc + "files: ");
      e.meta = t;
      entries.push_back(std::move(e));
    }
  } else {
    // No tasks.json: every train/<task>.jsonl and test/<task>.{train,test}.jsonl, in name order.
    std::vector<std::string> names;
    if (fs::is_directory(root / "train"))
      for (const auto& f : fs::directory_iterator(root / "train"))
        if (f.path().extension() == ".jsonl") names.push_back(f.path().stem().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) entries.push_back({n, "train", root / "train" / (n + ".jsonl"), {}, {}});
    names.clear();
    if (fs::is_directory(root / "test"))
      for (const auto& f : fs::directory_iterator(root / "test")) {
        const std::string fn = f.path().filename().string();
        const std::string suffix = ".test.jsonl";
        if (fn.size() > suffix.size() && fn.compare(fn.size() - suffix.size(), suffix.size(), suffix) == 0)
          names.push_back(fn.substr(0, fn.size() - suffix.size()));
      }
    std::sort(names.begin(), names.end());
    for (const auto& n : names)
      entries.push_back({n, "test", root / "test" / (n + ".train.jsonl"), root / "test" / (n + ".test.jsonl"), {}});
    if (entries.empty()) fail_input(where(display(root)) + "no tasks (expected tasks.json, train/*.jsonl or test/*.test.jsonl)");
  }
  for (auto& e : entries) {
    Task t;
    t.name = e.name;
    t.split = e.split;
    std::string sha_train, sha_test;
    t.examples = read_jsonl_examples(e.train_file, &sha_train);
    if (!e.test_file.empty()) t.test_examples = read_jsonl_examples(e.test_file, &sha_test);
    t.definition = t.examples.front().definition;
    for (const auto* list : {&t.examples, &t.test_examples})
      for (const auto& ex : *list)
        if (ex.task != t.name)
          fail_input(where(display(list == &t.examples ? e.train_file : e.test_file)) + "task '" + ex.task +
                     "' does not match the task name '" + t.name + "'");
    std::string meta_bytes;
    if (!e.meta.is_null()) {
      const std::string loc = where(display(meta_path)) + "task '" + t.name + "': ";
      if (e.meta.contains("definition") && e.meta["definition"].is_string())
        t.definition = e.meta["definition"].get<std::string>();
      if (e.meta.contains("positive_examples")) {
        const json& pe = e.meta["positive_examples"];
        if (!pe.is_array()) fail_input(loc + "field 'positive_examples' must be a list");
        for (const auto& p : pe) {
          if (!p.is_object()) fail_input(loc + "field 'positive_examples' must be a list of objects");
          PositiveExample x{get_string(p, "input", loc), get_string(p, "output", loc), ""};
          if (p.contains("explanation") && p["explanation"].is_string()) x.explanation = p["explanation"];
          t.positive_examples.push_back(std::move(x));
        }
      }
      meta_bytes = e.meta.dump();
    }
    t.content_sha256 = sha256_hex(sha_train + sha_test + meta_bytes);
    finish_task(t, display(e.train_file));
    suite.tasks.push_back(std::move(t));
  }
  return suite;
}

// ---------------------------------------------------------------------------------------------------------
// (a) Official SuperNI layout.

TaskSuite read_superni_official(const fs::path& root, const ReadOptions& options) {
  TaskSuite suite;
  suite.root = display(root);
  for (const std::string split : {"train", "test"}) {
    const fs::path list = root / "splits" / "default" / (split + "_tasks.txt");
    const auto lines = read_lines(list);
    for (size_t ln = 0; ln < lines.size(); ++ln) {
      std::string name = lines[ln];
      name.erase(name.find_last_not_of(" \t") + 1);
      name.erase(0, name.find_first_not_of(" \t"));
      if (name.empty()) continue;
      const fs::path file = root / "tasks" / (name + ".json");
      if (!fs::exists(file)) {
        if (options.skip_missing_tasks) continue;
        fail_input(where(display(list), static_cast<int>(ln + 1)) + "task file tasks/" + name + ".json not found");
      }
      std::string bytes;
      const json j = parse_json_file(file, &bytes);
      const std::string loc = where(display(file));
      if (!j.is_object()) fail_input(loc + "expected a JSON object");
      Task t;
      t.name = name;
      t.split = split;
      t.content_sha256 = sha256_hex(bytes);
      const auto defs = get_string_list(j, "Definition", loc);
      t.definition = defs.front();
      const auto pit = j.find("Positive Examples");
      if (pit == j.end()) fail_input(loc + "missing field 'Positive Examples'");
      if (!pit->is_array()) fail_input(loc + "field 'Positive Examples' must be a list");
      for (size_t i = 0; i < pit->size(); ++i) {
        const json& p = (*pit)[i];
        const std::string ploc = loc + "Positive Examples[" + std::to_string(i) + "]: ";
        if (!p.is_object()) fail_input(ploc + "expected a JSON object");
        PositiveExample x{get_string(p, "input", ploc), get_string(p, "output", ploc), ""};
        if (p.contains("explanation") && p["explanation"].is_string()) x.explanation = p["explanation"];
        t.positive_examples.push_back(std::move(x));
      }
      const auto iit = j.find("Instances");
      if (iit == j.end()) fail_input(loc + "missing field 'Instances'");
      if (!iit->is_array()) fail_input(loc + "field 'Instances' must be a list");
      std::vector<Example> all;
      for (size_t i = 0; i < iit->size(); ++i) {
        const json& inst = (*iit)[i];
        const std::string iloc = loc + "Instances[" + std::to_string(i) + "]: ";
        if (!inst.is_object()) fail_input(iloc + "expected a JSON object");
        all.push_back({get_string(inst, "id", iloc), name, t.definition, get_string(inst, "input", iloc),
                       get_string_list(inst, "output", iloc)});
      }
      if (all.empty()) fail_input(loc + "no examples");
      if (split == "test") {
        const size_t n_eval = std::min(options.n_eval_instances, all.size());
        t.test_examples.assign(all.begin(), all.begin() + static_cast<long>(n_eval));
        t.examples.assign(all.begin() + static_cast<long>(n_eval), all.end());
      } else {
        if (options.max_train_instances > 0 && all.size() > options.max_train_instances) {
          CountingRng rng(derive_seed(options.seed, name));
          portable_shuffle(all, rng);
          all.resize(options.max_train_instances);
        }
        t.examples = std::move(all);
      }
      finish_task(t, display(file));
      suite.tasks.push_back(std::move(t));
    }
  }
  if (suite.tasks.empty()) fail_input(where(display(root)) + "no tasks listed in splits/default/*_tasks.txt");
  return suite;
}

// ---------------------------------------------------------------------------------------------------------
// (c) BIG-Bench Hard.

namespace {
// cot-prompts/<task>.txt: canary line, "-----", description line, then "Q: ...\nA: ... So the answer is X."
// blocks separated by blank lines. Answer-only positive examples keep the question and X.
void read_bbh_prompt(const fs::path& file, Task& t) {
  std::string text = read_file(file);
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  const auto sep = text.find("-----\n");
  if (sep != std::string::npos) text = text.substr(sep + 6);
  const auto desc_end = text.find('\n');
  t.definition = text.substr(0, desc_end);
  std::string rest = desc_end == std::string::npos ? "" : text.substr(desc_end);
  size_t pos = 0;
  while ((pos = rest.find("Q: ", pos)) != std::string::npos) {
    const size_t a = rest.find("\nA:", pos);
    if (a == std::string::npos) break;
    size_t next = rest.find("\n\nQ: ", a);
    const std::string answer_text = rest.substr(a, next == std::string::npos ? std::string::npos : next - a);
    const std::string marker = "So the answer is ";
    const size_t m = answer_text.rfind(marker);
    if (m != std::string::npos) {
      std::string ans = answer_text.substr(m + marker.size());
      while (!ans.empty() && (ans.back() == '\n' || ans.back() == ' ')) ans.pop_back();
      if (!ans.empty() && ans.back() == '.') ans.pop_back();
      t.positive_examples.push_back({rest.substr(pos + 3, a - pos - 3), ans, ""});
    }
    if (next == std::string::npos) break;
    pos = next + 2;
  }
}
}  // namespace

TaskSuite read_bbh(const fs::path& root) {
  TaskSuite suite;
  suite.root = display(root);
  std::vector<fs::path> files;
  if (!fs::is_directory(root)) fail_input(where(display(root)) + "not a directory");
  for (const auto& f : fs::directory_iterator(root))
    if (f.path().extension() == ".json") files.push_back(f.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::string bytes;
    const json j = parse_json_file(file, &bytes);
    const std::string loc = where(display(file));
    if (!j.is_object()) fail_input(loc + "expected a JSON object");
    const auto it = j.find("examples");
    if (it == j.end()) fail_input(loc + "missing field 'examples'");
    if (!it->is_array()) fail_input(loc + "field 'examples' must be a list");
    Task t;
    t.name = file.stem().string();
    t.split = "test";
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const std::string eloc = loc + "examples[" + std::to_string(i) + "]: ";
      if (!e.is_object()) fail_input(eloc + "expected a JSON object");
      t.examples.push_back({t.name + "-" + std::to_string(i), t.name, "", get_string(e, "input", eloc),
                            {get_string(e, "target", eloc)}});
    }
    std::string prompt_bytes;
    const fs::path prompt = root / "cot-prompts" / (t.name + ".txt");
    if (fs::exists(prompt)) {
      read_bbh_prompt(prompt, t);
      prompt_bytes = read_file(prompt);
    }
    for (auto& ex : t.examples) ex.definition = t.definition;
    t.content_sha256 = sha256_hex(sha256_hex(bytes) + sha256_hex(prompt_bytes));
    finish_task(t, display(file));
    suite.tasks.push_back(std::move(t));
  }
  if (suite.tasks.empty()) fail_input(where(display(root)) + "no BBH task files (*.json)");
  return suite;
}

TaskSuite read_suite(const fs::path& root, const ReadOptions& options) {
  if (fs::is_directory(root / "tasks") && fs::is_directory(root / "splits")) return read_superni_official(root, options);
  if (fs::is_directory(root / "train") || fs::is_directory(root / "test") || fs::exists(root / "tasks.json"))
    return read_jsonl_suite(root);
  if (fs::is_directory(root)) return read_bbh(root);
  fail_input(where(display(root)) + "data directory not found");
}

}  // namespace peft::data
