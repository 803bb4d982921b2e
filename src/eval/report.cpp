#include "eval/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"

namespace peft::eval {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------
// JSONL

std::string result_json_line(const ResultRow& row) {
  // ordered_json keeps the documented key order (nlohmann::json would sort keys).
  nlohmann::ordered_json j;
  j["task"] = row.task;
  j["variant"] = row.variant;
  j["seed"] = row.seed;
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  for (const auto& [name, value] : row.metrics) {
    if (std::isfinite(value)) metrics[name] = value;
    else metrics[name] = nullptr;  // JSON has no NaN/inf
  }
  j["metrics"] = metrics;
  j["trainable_params"] = row.trainable_params;
  if (row.merged_params != 0) j["merged_params"] = row.merged_params;
  j["steps"] = row.steps;
  j["wall_seconds"] = row.wall_seconds;
  return j.dump();
}

std::string results_jsonl(const std::vector<ResultRow>& rows) {
  std::string out;
  for (const auto& r : rows) out += result_json_line(r) + "\n";
  return out;
}

namespace {

const json& require(const json& j, const char* key, const std::string& at) {
  auto it = j.find(key);
  if (it == j.end()) fail_input(at + "missing key '" + key + "'");
  return *it;
}

int64_t require_int(const json& j, const char* key, const std::string& at) {
  const json& v = require(j, key, at);
  if (!v.is_number_integer()) fail_input(at + "key '" + key + "' must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

std::string require_string(const json& j, const char* key, const std::string& at) {
  const json& v = require(j, key, at);
  if (!v.is_string()) fail_input(at + "key '" + key + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

double require_number(const json& j, const char* key, const std::string& at) {
  const json& v = require(j, key, at);
  if (!v.is_number()) fail_input(at + "key '" + key + "' must be a number, got " + v.dump());
  return v.get<double>();
}

}  // namespace

std::vector<ResultRow> parse_results_jsonl(const std::string& text, const std::string& source) {
  std::vector<ResultRow> rows;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string at = where(source, line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      fail_input(at + "malformed JSON (" + e.what() + ")");
    }
    if (!j.is_object()) fail_input(at + "expected a JSON object, got " + std::string(j.type_name()));
    ResultRow r;
    r.task = require_string(j, "task", at);
    r.variant = require_string(j, "variant", at);
    r.seed = require_int(j, "seed", at);
    const json& metrics = require(j, "metrics", at);
    if (!metrics.is_object()) fail_input(at + "key 'metrics' must be an object, got " + metrics.dump());
    for (const auto& [name, value] : metrics.items()) {
      if (value.is_null()) r.metrics[name] = std::numeric_limits<double>::quiet_NaN();
      else if (value.is_number()) r.metrics[name] = value.get<double>();
      else fail_input(at + "metric '" + name + "' must be a number, got " + value.dump());
    }
    r.trainable_params = require_int(j, "trainable_params", at);
    if (j.contains("merged_params")) r.merged_params = require_int(j, "merged_params", at);
    r.steps = require_int(j, "steps", at);
    r.wall_seconds = require_number(j, "wall_seconds", at);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<ResultRow> read_results_jsonl(const std::filesystem::path& path) {
  return parse_results_jsonl(read_file(path), path.string());
}

void append_result_jsonl(const std::filesystem::path& path, const ResultRow& row) {
  std::string content = std::filesystem::exists(path) ? read_file(path) : std::string();
  if (!content.empty() && content.back() != '\n') content += '\n';
  write_file_atomic(path, content + result_json_line(row) + "\n");
}

// ---------------------------------------------------------------------------------------------------------
// CSV

namespace {

const char* const kFixedColumns[] = {"task",          "variant", "seed",        "trainable_params",
                                     "merged_params", "steps",   "wall_seconds"};
constexpr size_t kNumFixed = std::size(kFixedColumns);

// Shortest of %.15g / %.17g that reads back to the same double (%.17g always does).
std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision : {15, 16, 17}) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

struct CsvRecord {
  int line = 0;  // line on which the record starts
  std::vector<std::string> fields;
};

std::vector<CsvRecord> split_csv(const std::string& text, const std::string& source) {
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  bool in_quotes = false, field_started = false;
  int line = 1;
  rec.line = 1;
  auto end_record = [&]() {
    rec.fields.push_back(field);
    field.clear();
    field_started = false;
    if (!(rec.fields.size() == 1 && rec.fields[0].empty())) records.push_back(rec);  // skip blank lines
    rec = CsvRecord();
    rec.line = line;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
        else in_quotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && !field_started) {
      in_quotes = field_started = true;
    } else if (c == ',') {
      rec.fields.push_back(field);
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      end_record();
    } else {
      field += c;
      field_started = true;
    }
  }
  if (in_quotes) fail_input(where(source, rec.line) + "unterminated quoted field");
  if (field_started || !rec.fields.empty()) end_record();
  return records;
}

int64_t parse_int(const std::string& s, const std::string& column, const std::string& at) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE)
    fail_input(at + "column '" + column + "': not an integer '" + s + "'");
  return static_cast<int64_t>(v);
}

double parse_double(const std::string& s, const std::string& column, const std::string& at) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') fail_input(at + "column '" + column + "': not a number '" + s + "'");
  return v;
}

}  // namespace

std::string results_csv(const std::vector<ResultRow>& rows) {
  std::set<std::string> metric_set;
  for (const auto& r : rows)
    for (const auto& [name, value] : r.metrics) metric_set.insert(name);
  std::string out;
  for (size_t k = 0; k < kNumFixed; ++k) out += (k ? "," : "") + std::string(kFixedColumns[k]);
  for (const auto& m : metric_set) out += "," + csv_field(m);
  out += "\n";
  for (const auto& r : rows) {
    out += csv_field(r.task) + "," + csv_field(r.variant) + "," + std::to_string(r.seed) + "," +
           std::to_string(r.trainable_params) + "," + std::to_string(r.merged_params) + "," + std::to_string(r.steps) +
           "," + format_double(r.wall_seconds);
    for (const auto& m : metric_set) {
      out += ",";
      auto it = r.metrics.find(m);
      if (it != r.metrics.end()) out += format_double(it->second);
    }
    out += "\n";
  }
  return out;
}

std::vector<ResultRow> parse_results_csv(const std::string& text, const std::string& source) {
  const std::vector<CsvRecord> records = split_csv(text, source);
  if (records.empty()) fail_input(where(source) + "empty CSV (no header)");
  const auto& header = records[0].fields;
  for (size_t k = 0; k < kNumFixed; ++k)
    if (header.size() <= k || header[k] != kFixedColumns[k])
      fail_input(where(source, records[0].line) + "header column " + std::to_string(k + 1) + " must be '" +
                 kFixedColumns[k] + "'");
  std::vector<ResultRow> rows;
  for (size_t i = 1; i < records.size(); ++i) {
    const auto& f = records[i].fields;
    const std::string at = where(source, records[i].line);
    if (f.size() != header.size())
      fail_input(at + "expected " + std::to_string(header.size()) + " fields, got " + std::to_string(f.size()));
    ResultRow r;
    r.task = f[0];
    r.variant = f[1];
    r.seed = parse_int(f[2], "seed", at);
    r.trainable_params = parse_int(f[3], "trainable_params", at);
    r.merged_params = parse_int(f[4], "merged_params", at);
    r.steps = parse_int(f[5], "steps", at);
    r.wall_seconds = parse_double(f[6], "wall_seconds", at);
    for (size_t k = kNumFixed; k < f.size(); ++k)
      if (!f[k].empty()) r.metrics[header[k]] = parse_double(f[k], header[k], at);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<ResultRow> read_results_csv(const std::filesystem::path& path) {
  return parse_results_csv(read_file(path), path.string());
}

// ---------------------------------------------------------------------------------------------------------
// Aggregation

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd m;
  m.n = static_cast<int>(values.size());
  if (values.empty()) return m;
  double sum = 0.0;
  for (double v : values) sum += v;
  m.mean = sum / values.size();
  if (values.size() > 1) {
    double ss = 0.0;
    for (double v : values) ss += (v - m.mean) * (v - m.mean);
    m.std = std::sqrt(ss / (values.size() - 1));
  }
  return m;
}

namespace {
template <typename Key>
std::vector<Key> first_seen(const std::vector<ResultRow>& rows, Key ResultRow::*field) {
  std::vector<Key> order;
  for (const auto& r : rows)
    if (std::find(order.begin(), order.end(), r.*field) == order.end()) order.push_back(r.*field);
  return order;
}
}  // namespace

std::vector<VariantSummary> summarize(const std::vector<ResultRow>& rows,
                                      const std::vector<std::string>& metric_names) {
  std::vector<VariantSummary> out;
  for (const std::string& variant : first_seen(rows, &ResultRow::variant)) {
    VariantSummary s;
    s.variant = variant;
    std::set<std::string> tasks;
    std::map<int64_t, std::vector<const ResultRow*>> by_seed;  // ascending seeds: deterministic sums
    double params = 0.0, merged = 0.0;
    int n_rows = 0;
    for (const auto& r : rows) {
      if (r.variant != variant) continue;
      tasks.insert(r.task);
      by_seed[r.seed].push_back(&r);
      params += static_cast<double>(r.trainable_params);
      merged += static_cast<double>(r.merged_params);
      ++n_rows;
    }
    s.n_tasks = static_cast<int>(tasks.size());
    s.n_seeds = static_cast<int>(by_seed.size());
    s.trainable_params = n_rows ? params / n_rows : 0.0;
    s.merged_params = n_rows ? merged / n_rows : 0.0;
    for (const auto& metric : metric_names) {
      std::vector<double> per_seed;  // mean over tasks, one per seed
      for (const auto& [seed, seed_rows] : by_seed) {
        std::vector<double> values;
        for (const ResultRow* r : seed_rows) {
          auto it = r->metrics.find(metric);
          if (it != r->metrics.end()) values.push_back(it->second);
        }
        if (!values.empty()) per_seed.push_back(mean_std(values).mean);
      }
      s.metrics[metric] = mean_std(per_seed);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<TaskSummary> summarize_per_task(const std::vector<ResultRow>& rows,
                                            const std::vector<std::string>& metric_names) {
  std::vector<TaskSummary> out;
  const auto variants = first_seen(rows, &ResultRow::variant);
  for (const std::string& task : first_seen(rows, &ResultRow::task)) {
    for (const std::string& variant : variants) {
      std::map<int64_t, std::vector<const ResultRow*>> by_seed;
      for (const auto& r : rows)
        if (r.task == task && r.variant == variant) by_seed[r.seed].push_back(&r);
      if (by_seed.empty()) continue;
      TaskSummary t;
      t.task = task;
      t.variant = variant;
      for (const auto& metric : metric_names) {
        std::vector<double> per_seed;
        for (const auto& [seed, seed_rows] : by_seed) {
          std::vector<double> values;  // normally one row per (task, variant, seed); repeats are averaged
          for (const ResultRow* r : seed_rows) {
            auto it = r->metrics.find(metric);
            if (it != r->metrics.end()) values.push_back(it->second);
          }
          if (!values.empty()) per_seed.push_back(mean_std(values).mean);
        }
        t.metrics[metric] = mean_std(per_seed);
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string format_mean_std(const MeanStd& m, int decimals) {
  if (m.n == 0) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f±%.*f", decimals, m.mean, decimals, m.std);
  return buf;
}

namespace {
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

std::string format_count(double v) {
  if (!std::isfinite(v)) return "n/a";
  std::string digits = std::to_string(static_cast<long long>(std::llround(std::abs(v))));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}
}  // namespace

std::string summary_markdown(const std::vector<ResultRow>& rows, const std::vector<std::string>& metric_names,
                             int decimals) {
  std::ostringstream md;
  md << "## Summary\n\n"
     << "Mean ± sample std over seeds of the per-seed average over tasks.\n\n";
  md << "| Variant |";
  for (const auto& m : metric_names) md << " " << md_cell(m) << " |";
  md << " Trainable params/task | Tasks | Seeds |\n|---|";
  for (size_t i = 0; i < metric_names.size(); ++i) md << "---:|";
  md << "---:|---:|---:|\n";
  for (const auto& s : summarize(rows, metric_names)) {
    md << "| " << md_cell(s.variant) << " |";
    for (const auto& m : metric_names) md << " " << format_mean_std(s.metrics.at(m), decimals) << " |";
    md << " " << format_count(s.trainable_params);
    if (s.merged_params > 0) md << " (merged " << format_count(s.merged_params) << ")";
    md << " | " << s.n_tasks << " | " << s.n_seeds << " |\n";
  }
  md << "\n## Per task\n\nMean ± sample std over seeds.\n\n| Task | Variant |";
  for (const auto& m : metric_names) md << " " << md_cell(m) << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < metric_names.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& t : summarize_per_task(rows, metric_names)) {
    md << "| " << md_cell(t.task) << " | " << md_cell(t.variant) << " |";
    for (const auto& m : metric_names) md << " " << format_mean_std(t.metrics.at(m), decimals) << " |";
    md << "\n";
  }
  return md.str();
}

}  // namespace peft::eval
