// YAML file + `--set` overrides -> typed Config, every problem a one-line InputError with file, line and key.
// The only place that reads YAML.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "config/config.h"
#include "config/schema.h"
#include "config/validate.h"

namespace peft {
namespace {

using config::Option;
using config::Type;
using config::Value;

// A value as written, before it is typed by the table.
struct Raw {
  enum Kind { Null, Scalar, Sequence, Map } kind = Null;
  std::string text;
  std::vector<Raw> items;
  int line = 0;  // 1-based; 0 = not from a file
};

// Where each key got its value, so that every message can point there.
struct Sources {
  std::string file;                            // "" when there is no config file
  std::map<std::string, int> line;             // key -> line in `file`
  std::map<std::string, std::string> set_arg;  // key -> "key=value" of its last --set

  // `line` > 0 overrides the key's recorded line (a list element on its own line).
  std::string message(const std::string& key, const std::string& what, const std::string& got = "",
                      int line_override = 0) const {
    auto s = set_arg.find(key);
    if (s != set_arg.end()) return "--set " + s->second + ": " + what;  // the value is right there
    int l = line_override;
    if (l == 0) {
      auto it = line.find(key);
      if (it != line.end()) l = it->second;
    }
    const std::string got_text = got.empty() ? "" : ", got " + got;
    const std::string prefix = file.empty() ? "" : where(file, l);
    return prefix + key + ": " + what + got_text;
  }
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string kind_text(const Raw& raw) {
  switch (raw.kind) {
    case Raw::Null: return "nothing";
    case Raw::Scalar: return "'" + raw.text + "'";
    case Raw::Sequence: return "a list";
    case Raw::Map: return "a mapping";
  }
  return "?";
}

int node_line(const YAML::Node& node, int fallback) {
  const int l = node.Mark().line;
  return l >= 0 ? l + 1 : fallback;
}

Raw from_yaml(const YAML::Node& node, int fallback_line) {
  Raw r;
  r.line = node_line(node, fallback_line);
  if (!node.IsDefined() || node.IsNull()) {
    r.kind = Raw::Null;
    r.line = fallback_line;  // an empty value's mark is wherever the parser went next
  } else if (node.IsScalar()) {
    r.kind = Raw::Scalar;
    r.text = node.Scalar();
  } else if (node.IsSequence()) {
    r.kind = Raw::Sequence;
    for (const auto& item : node) r.items.push_back(from_yaml(item, r.line));
  } else {
    r.kind = Raw::Map;
  }
  return r;
}

// A problem with one value: `what` ("expected an integer", "must be > 0"), `got` (the text, quoted or not),
// `index` (list element, -1 for the whole value), `line` (0 = the key's line).
struct ValueError {
  std::string what, got;
  int index = -1;
  int line = 0;
};

std::optional<bool> parse_bool(const std::string& t) {
  std::string l = t;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "true") return true;
  if (l == "false") return false;
  return std::nullopt;
}

std::optional<int> parse_int(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX) return std::nullopt;
  return static_cast<int>(v);
}

std::optional<double> parse_float(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Range / enum check of one scalar; `text` is how it was written.
std::optional<ValueError> check(const config::Constraint& c, const Value& v, const std::string& text) {
  if (!c.choices.empty()) {
    const std::string* s = std::get_if<std::string>(&v);
    if (s && std::find(c.choices.begin(), c.choices.end(), *s) == c.choices.end())
      return ValueError{"unknown value '" + *s + "' (" + c.describe() + ")", ""};
    return std::nullopt;
  }
  double x;
  if (const int* i = std::get_if<int>(&v)) {
    x = *i;
  } else if (const double* d = std::get_if<double>(&v)) {
    x = *d;
  } else {
    return std::nullopt;
  }
  const bool low = c.min && (c.min_exclusive ? x <= *c.min : x < *c.min);
  const bool high = c.max && (c.max_exclusive ? x >= *c.max : x > *c.max);
  if (low || high) return ValueError{"must be " + c.describe(), trim(text)};
  return std::nullopt;
}

// Types a scalar for a scalar type (Bool/Int/Float/String) and checks its constraint.
std::optional<Value> parse_scalar(Type type, const config::Constraint& c, const Raw& raw, ValueError& err) {
  if (type == Type::String && raw.kind == Raw::Null) return Value(std::string());
  if (raw.kind != Raw::Scalar) {
    err = {std::string("expected ") + config::type_name(type), kind_text(raw)};
    return std::nullopt;
  }
  Value v;
  switch (type) {
    case Type::Bool: {
      auto b = parse_bool(trim(raw.text));
      if (!b) {
        err = {"expected true or false", "'" + raw.text + "'"};
        return std::nullopt;
      }
      v = *b;
      break;
    }
    case Type::Int: {
      auto i = parse_int(raw.text);
      if (!i) {
        err = {"expected an integer", "'" + raw.text + "'"};
        return std::nullopt;
      }
      v = *i;
      break;
    }
    case Type::Float: {
      auto d = parse_float(raw.text);
      if (!d) {
        err = {"expected a number", "'" + raw.text + "'"};
        return std::nullopt;
      }
      v = *d;
      break;
    }
    default:
      v = raw.text;
  }
  if (auto e = check(c, v, raw.text)) {
    err = *e;
    return std::nullopt;
  }
  return v;
}

std::optional<Value> parse_value(const Option& option, const Raw& raw, ValueError& err) {
  const Type type = option.type();
  if (type != Type::StringList && type != Type::IntList) return parse_scalar(type, option.constraint, raw, err);
  if (raw.kind == Raw::Null) {
    if (type == Type::StringList) return Value(std::vector<std::string>{});
    return Value(std::vector<int>{});
  }
  if (raw.kind != Raw::Sequence) {
    err = {std::string("expected ") + config::type_name(type), kind_text(raw)};
    return std::nullopt;
  }
  const Type element = type == Type::StringList ? Type::String : Type::Int;
  std::vector<std::string> strings;
  std::vector<int> ints;
  for (size_t i = 0; i < raw.items.size(); ++i) {
    const Raw& item = raw.items[i];
    if (element == Type::String && item.kind == Raw::Null) {
      err = {"expected a string", "nothing", static_cast<int>(i), item.line};
      return std::nullopt;
    }
    auto v = parse_scalar(element, option.constraint, item, err);
    if (!v) {
      err.index = static_cast<int>(i);
      err.line = item.line;
      return std::nullopt;
    }
    if (element == Type::String)
      strings.push_back(std::get<std::string>(*v));
    else
      ints.push_back(std::get<int>(*v));
  }
  if (type == Type::StringList) return Value(strings);
  return Value(ints);
}

// Sets `option` from `raw` or throws the one-line message.
void assign(Config& config, const Option& option, const Raw& raw, const Sources& sources) {
  ValueError err;
  auto v = parse_value(option, raw, err);
  if (!v) {
    const std::string key = err.index >= 0 ? option.key + "[" + std::to_string(err.index) + "]" : option.key;
    if (sources.set_arg.count(option.key)) throw InputError(sources.message(option.key, err.what));
    throw InputError(sources.message(key, err.what, err.got, err.line > 0 ? err.line : raw.line));
  }
  config::set(config, option, *v);
}

std::vector<std::string> names_in(const std::string& section) {
  std::vector<std::string> out;
  for (const Option& o : config::options())
    if (o.section() == section) out.push_back(o.name());
  return out;
}

std::string unknown_key(const std::string& name, const std::string& section) {
  const std::vector<std::string> candidates = section.empty() ? config::sections() : names_in(section);
  std::string msg = "unknown key '" + name + "'";
  if (!section.empty()) msg += " in '" + section + "'";
  const std::string s = config::suggest(name, candidates);
  if (!s.empty()) msg += " (did you mean '" + s + "'?)";
  return msg;
}

bool is_section(const std::string& name) {
  const auto s = config::sections();
  return std::find(s.begin(), s.end(), name) != s.end();
}

void apply_yaml(const YAML::Node& root, Config& config, Sources& sources) {
  const std::string& file = sources.file;
  if (!root.IsDefined() || root.IsNull()) return;  // an empty file: every default
  if (!root.IsMap())
    throw InputError(where(file, node_line(root, 1)) + "expected a mapping of sections (model:, data:, train:, ...), got " +
                     kind_text(from_yaml(root, 1)));
  std::set<std::string> seen_sections;
  for (const auto& section_pair : root) {
    const int line = node_line(section_pair.first, 1);
    const std::string section = section_pair.first.Scalar();
    if (!is_section(section)) throw InputError(where(file, line) + unknown_key(section, ""));
    if (!seen_sections.insert(section).second)
      throw InputError(where(file, line) + "duplicate section '" + section + "'");
    const YAML::Node& body = section_pair.second;
    if (!body.IsDefined() || body.IsNull()) continue;  // `train:` with nothing under it
    if (!body.IsMap())
      throw InputError(where(file, node_line(body, line)) + section + ": expected a mapping of keys, got " +
                       kind_text(from_yaml(body, line)));
    std::set<std::string> seen;
    for (const auto& pair : body) {
      const int key_line = node_line(pair.first, line);
      const std::string name = pair.first.Scalar();
      const std::string key = section + "." + name;
      const Option* option = config::find_option(key);
      if (!option) throw InputError(where(file, key_line) + unknown_key(name, section));
      if (!seen.insert(name).second)
        throw InputError(where(file, key_line) + "duplicate key '" + name + "' in '" + section + "'");
      sources.line[key] = key_line;
      assign(config, *option, from_yaml(pair.second, key_line), sources);
    }
  }
}

// "--set key=value": the raw value typed by the key's table entry (see config.h for the list syntax).
void apply_override(const std::string& arg, Config& config, Sources& sources) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) throw InputError("--set " + arg + ": expected key.path=value");
  const std::string key = trim(arg.substr(0, eq));
  const std::string text = arg.substr(eq + 1);
  const Option* option = config::find_option(key);
  if (!option) {
    const size_t dot = key.find('.');
    const std::string section = key.substr(0, dot);
    if (!is_section(section)) throw InputError("--set " + arg + ": " + unknown_key(section, ""));
    if (dot == std::string::npos)
      throw InputError("--set " + arg + ": '" + section + "' is a section; set one of its keys, e.g. " + section +
                       "." + names_in(section).front());
    throw InputError("--set " + arg + ": " + unknown_key(key.substr(dot + 1), section));
  }
  sources.set_arg[key] = key + "=" + text;
  Raw raw;
  const Type type = option->type();
  if (type == Type::StringList || type == Type::IntList) {
    raw.kind = Raw::Sequence;
    const std::string t = trim(text);
    if (!t.empty() && t.front() == '[') {
      YAML::Node node;
      try {
        node = YAML::Load(t);
      } catch (const YAML::Exception&) {
        throw InputError("--set " + arg + ": expected a list like [a, b] or a,b");
      }
      raw = from_yaml(node, 0);
      if (raw.kind != Raw::Sequence) throw InputError("--set " + arg + ": expected a list like [a, b] or a,b");
    } else if (!t.empty()) {
      std::stringstream ss(t);
      std::string item;
      while (std::getline(ss, item, ',')) raw.items.push_back(Raw{Raw::Scalar, trim(item), {}, 0});
    }
  } else {
    raw.kind = Raw::Scalar;
    raw.text = text;  // strings verbatim (paths may hold anything); numbers are trimmed when parsed
  }
  assign(config, *option, raw, sources);
}

Config finish(Config config, const Sources& sources) {
  const auto problems = validate_config(config);
  if (!problems.empty()) {
    const ConfigProblem& p = problems.front();
    throw InputError(sources.message(p.key, p.message));
  }
  return config;
}

Config load_text(const std::string& yaml, Sources& sources, const std::vector<std::string>& overrides) {
  Config config = default_config();
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw InputError(where(sources.file, e.mark.line >= 0 ? e.mark.line + 1 : 0) + "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw InputError(where(sources.file) + "YAML error: " + e.msg);
  }
  apply_yaml(root, config, sources);
  for (const std::string& o : overrides) apply_override(o, config, sources);
  return finish(config, sources);
}

std::string emit(const Config& config, bool comments, const std::string& only_section) {
  std::string out;
  std::string current;
  for (const Option& o : config::options()) {
    if (!only_section.empty() && o.section() != only_section) continue;
    if (o.section() != current) {
      if (!current.empty()) out += "\n";
      current = o.section();
      out += current + ":\n";
    }
    if (comments) {
      std::string line = "  # " + o.help;
      const std::string allowed = o.constraint.describe();
      if (!allowed.empty()) line += " [" + allowed + "]";
      out += line + "\n";
    }
    out += "  " + o.name() + ": " + config::format_value(config::get(config, o)) + "\n";
  }
  return out;
}

}  // namespace

bool operator==(const Config& a, const Config& b) {
  for (const Option& o : config::options())
    if (config::get(a, o) != config::get(b, o)) return false;
  return true;
}

Config default_config() {
  Config c;
  for (const Option& o : config::options()) config::set(c, o, o.default_value);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(where(path) + "is a directory, expected a YAML file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where(path) + "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  Sources sources;
  sources.file = path;
  return load_text(ss.str(), sources, overrides);
}

Config load_config_string(const std::string& yaml, const std::string& name,
                          const std::vector<std::string>& overrides) {
  Sources sources;
  sources.file = name;
  return load_text(yaml, sources, overrides);
}

Config config_from_overrides(const std::vector<std::string>& overrides) {
  Sources sources;
  Config config = default_config();
  for (const std::string& o : overrides) apply_override(o, config, sources);
  return finish(config, sources);
}

std::string to_yaml(const Config& config) { return emit(config, false, ""); }

std::string to_yaml_section(const Config& config, const std::string& section) {
  return emit(config, false, section);
}

std::string reference_yaml() {
  return "# peft configuration reference: every key at its default, with what it does [allowed values].\n"
         "# Generated by `peft config --reference`; do not edit by hand (tests/config checks it matches).\n"
         "# A config file needs only the keys it changes; `peft config FILE` prints the fully resolved result.\n\n" +
         emit(default_config(), true, "");
}

}  // namespace peft
