// The option table: one entry per config key (dotted path, type, default, allowed range or values, help).
// Everything else — loading, `--set`, to_yaml, reference.yaml, equality — is driven by it.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace peft::config {

// The value types a key can have; the variant index is the key's type.
using Value = std::variant<bool, int, double, std::string, std::vector<std::string>, std::vector<int>>;
using FieldRef = std::variant<bool*, int*, double*, std::string*, std::vector<std::string>*, std::vector<int>*>;

enum class Type { Bool = 0, Int, Float, String, StringList, IntList };
const char* type_name(Type type);  // "a boolean", "an integer", ...

// Allowed values: a numeric bound (applies to each element of an int list) and/or an enum (each element of a
// string list).
struct Constraint {
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  std::vector<std::string> choices;
  std::string describe() const;  // "> 0", "in [0, 1)", "one of: a, b" — "" when unconstrained
};

struct Option {
  std::string key;  // "train.learning_rate"
  Value default_value;
  std::function<FieldRef(Config&)> field;  // the struct member this key fills
  Constraint constraint;
  std::string help;  // one line

  Type type() const { return static_cast<Type>(default_value.index()); }
  std::string section() const { return key.substr(0, key.find('.')); }
  std::string name() const { return key.substr(key.find('.') + 1); }
};

// In table order (= section order, then key order in to_yaml and reference.yaml).
const std::vector<Option>& options();
const Option* find_option(const std::string& key);
std::vector<std::string> sections();  // in table order

// Reads / writes a key of a config through the table.
Value get(const Config& config, const Option& option);
void set(Config& config, const Option& option, const Value& value);

// YAML text of one value, as to_yaml writes it (quoted only when YAML would misread it).
std::string format_value(const Value& value);

// The candidate closest to `word` by Levenshtein distance, or "" when none is close enough to be a typo.
std::string suggest(const std::string& word, const std::vector<std::string>& candidates);
size_t levenshtein(const std::string& a, const std::string& b);

}  // namespace peft::config
