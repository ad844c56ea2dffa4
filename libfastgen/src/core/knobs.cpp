// The knob registry (knobs.h): every FASTGEN_* variable read once, at the first lookup.
#include "core/knobs.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fastgen.h"

namespace {

enum Type { INT, FLAG, STR };

struct Knob {
  const char *name, *dflt, *meaning;
  Type type;
};

#define FG_KNOB_ROW_(id, type, dflt, meaning) {"FASTGEN_" #id, dflt, meaning, type},
const Knob kKnobs[FG_KNOB_COUNT] = {FG_KNOBS(FG_KNOB_ROW_)};
#undef FG_KNOB_ROW_

struct Values {
  std::string raw[FG_KNOB_COUNT];  // the environment's text, or the default
  bool set[FG_KNOB_COUNT] = {};
  int32_t num[FG_KNOB_COUNT] = {};

  Values() {
    for (int i = 0; i < FG_KNOB_COUNT; i++) {
      const Knob &k = kKnobs[i];
      const char *e = getenv(k.name);
      set[i] = e != nullptr;
      raw[i] = e ? e : k.dflt;
      const int32_t dflt = k.type == STR ? 0 : atoi(k.dflt);
      switch (k.type) {
        case INT: num[i] = e && e[0] ? atoi(e) : dflt; break;
        case FLAG: num[i] = e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : dflt; break;
        case STR: num[i] = 0; break;
      }
    }
  }
};

const Values &values() {
  static const Values v;
  return v;
}

void json_string(std::string &out, const char *s) {
  out += '"';
  for (; *s; s++) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') out += '\\', out += (char)c;
    else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += (char)c;
  }
  out += '"';
}

}  // namespace

extern "C" {

int32_t fg_knob_int(fg_knob k) { return k >= 0 && k < FG_KNOB_COUNT ? values().num[k] : 0; }

const char *fg_knob_str(fg_knob k) {
  return k >= 0 && k < FG_KNOB_COUNT ? values().raw[k].c_str() : "";
}

const char *fg_knobs(void) {
  static const std::string table = [] {
    static const char *kTypes[] = {"int", "flag", "string"};
    const Values &v = values();
    std::string out = "[";
    for (int i = 0; i < FG_KNOB_COUNT; i++) {
      const Knob &k = kKnobs[i];
      out += i ? ",{" : "{";
      out += "\"name\":", json_string(out, k.name);
      out += ",\"type\":", json_string(out, kTypes[k.type]);
      out += ",\"default\":", json_string(out, k.dflt);
      out += ",\"meaning\":", json_string(out, k.meaning);
      out += ",\"value\":";
      if (v.set[i]) json_string(out, v.raw[i].c_str());
      else out += "null";
      out += "}";
    }
    return out + "]";
  }();
  return table.c_str();
}

}  // extern "C"
