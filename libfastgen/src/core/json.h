// A small JSON reader for the model spec: parse once, then look fields up by key.
// Errors throw fg::Error(FG_ERR_INVALID_ARGUMENT) naming the byte offset.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace fg {

struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;  // in document order

  bool is_null() const { return type == Type::Null; }
  // Member of an object by key, or nullptr when absent (or when this is not an object).
  const Json *get(const std::string &key) const;
  static const char *type_name(Type t);
};

Json parse_json(const char *text);

}  // namespace fg
