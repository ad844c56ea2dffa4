// Recursive-descent JSON parser (RFC 8259), enough for configuration documents.
#include "core/json.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace fg {
namespace {

struct Parser {
  const char *s;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void bad(const char *what) {
    raise(FG_ERR_INVALID_ARGUMENT, "spec JSON: %s at byte %zu", what, i);
  }
  void skip_ws() {
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') i++;
  }
  void expect_word(const char *w) {
    size_t n = strlen(w);
    if (strncmp(s + i, w, n) != 0) bad("unexpected token");
    i += n;
  }

  Json value() {
    if (++depth > 64) bad("nesting too deep");
    skip_ws();
    Json v;
    char c = s[i];
    if (c == '{') {
      v.type = Json::Type::Object;
      i++;
      skip_ws();
      if (s[i] == '}') {
        i++;
      } else {
        for (;;) {
          skip_ws();
          if (s[i] != '"') bad("expected a string key");
          std::string key = string_body();
          skip_ws();
          if (s[i] != ':') bad("expected ':'");
          i++;
          v.object.emplace_back(std::move(key), value());
          skip_ws();
          if (s[i] == ',') { i++; continue; }
          if (s[i] == '}') { i++; break; }
          bad("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      v.type = Json::Type::Array;
      i++;
      skip_ws();
      if (s[i] == ']') {
        i++;
      } else {
        for (;;) {
          v.array.push_back(value());
          skip_ws();
          if (s[i] == ',') { i++; continue; }
          if (s[i] == ']') { i++; break; }
          bad("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      v.type = Json::Type::String;
      v.string = string_body();
    } else if (c == 't') {
      expect_word("true");
      v.type = Json::Type::Bool;
      v.boolean = true;
    } else if (c == 'f') {
      expect_word("false");
      v.type = Json::Type::Bool;
    } else if (c == 'n') {
      expect_word("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.type = Json::Type::Number;
      v.number = number();
    } else {
      bad(c ? "unexpected character" : "unexpected end of input");
    }
    depth--;
    return v;
  }

  double number() {
    size_t start = i;
    if (s[i] == '-') i++;
    if (!(s[i] >= '0' && s[i] <= '9')) bad("malformed number");
    while (s[i] >= '0' && s[i] <= '9') i++;
    if (s[i] == '.') {
      i++;
      if (!(s[i] >= '0' && s[i] <= '9')) bad("malformed number");
      while (s[i] >= '0' && s[i] <= '9') i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
      i++;
      if (s[i] == '+' || s[i] == '-') i++;
      if (!(s[i] >= '0' && s[i] <= '9')) bad("malformed number");
      while (s[i] >= '0' && s[i] <= '9') i++;
    }
    return strtod(std::string(s + start, i - start).c_str(), nullptr);
  }

  unsigned hex4() {
    unsigned u = 0;
    for (int k = 0; k < 4; k++) {
      char c = s[i++];
      u <<= 4;
      if (c >= '0' && c <= '9') u |= c - '0';
      else if (c >= 'a' && c <= 'f') u |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') u |= c - 'A' + 10;
      else bad("bad \\u escape");
    }
    return u;
  }

  static void put_utf8(std::string &out, unsigned cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  // s[i] == '"'; returns the decoded string and leaves i after the closing quote.
  std::string string_body() {
    i++;
    std::string out;
    for (;;) {
      unsigned char c = (unsigned char)s[i];
      if (c == '"') { i++; return out; }
      if (c == 0) bad("unterminated string");
      if (c < 0x20) bad("control character in string");
      if (c != '\\') { out += (char)c; i++; continue; }
      i++;
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) bad("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: i--; bad("bad escape");
      }
    }
  }
};

}  // namespace

const Json *Json::get(const std::string &key) const {
  for (const auto &kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char *Json::type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

Json parse_json(const char *text) {
  if (!text) raise(FG_ERR_INVALID_ARGUMENT, "spec JSON: null string");
  Parser p{text};
  Json v = p.value();
  p.skip_ws();
  if (text[p.i] != 0) p.bad("trailing characters");
  return v;
}

}  // namespace fg
