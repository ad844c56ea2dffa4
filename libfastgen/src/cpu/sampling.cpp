#include "cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fg {
namespace cpu {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// NaN ranks like -inf, so the orders below stay strict weak orders whatever the logits hold.
inline float rank_key(float x) { return std::isnan(x) ? -INFINITY : x; }

// Descending by value, ties to the lower id.
struct ByValueDesc {
  const float *v;
  bool operator()(int32_t a, int32_t b) const {
    const float x = rank_key(v[a]), y = rank_key(v[b]);
    return x > y || (x == y && a < b);
  }
};

// Repetition (HF: divide positive logits, multiply negative ones, once per distinct id), then
// presence/frequency (OpenAI: minus presence if seen, minus frequency * count), then logit bias.
// The row's draft ids count as outputs after the list, so a verification row is penalized bit
// for bit as the list holding them would be.
void apply_penalties(std::vector<float> &z, const SamplingParams &p) {
  const bool rep = p.repetition_penalty != 1.0f;
  const bool pf = p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (p.num_penalty_ids + p.num_draft_ids > 0 && (rep || pf)) {
    // id -> times it appears among the outputs (0 for an id seen in the prompt only).
    std::unordered_map<int32_t, int32_t> counts;
    for (int64_t i = 0; i < p.num_penalty_ids; i++) counts[p.penalty_ids[i]] += i >= p.num_prompt_penalty_ids;
    for (int64_t i = 0; i < p.num_draft_ids; i++) counts[p.draft_ids[i]]++;
    for (const auto &kv : counts) {
      float &l = z[kv.first];
      if (rep) l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
      if (pf && kv.second > 0) l -= p.presence_penalty + p.frequency_penalty * (float)kv.second;
    }
  }
  for (int64_t i = 0; i < p.num_bias; i++) z[p.bias_ids[i]] += p.bias_values[i];
}

// A masked id cannot be chosen: -inf, whatever penalties and bias made of it.
void apply_mask(std::vector<float> &z, const uint32_t *mask) {
  for (size_t i = 0; i < z.size(); i++)
    if (!(mask[i >> 5] >> (i & 31) & 1u)) z[i] = -INFINITY;
}

// z / T for a sampled row: NaN -> -inf, and +inf -> FLT_MAX. A +inf here (a tiny repetition
// penalty dividing a positive logit, a tiny T, an overflowing bias or model) made every
// exp(z - zmax) NaN, left no candidate, and the draw read the first id of an empty list: the
// issue #25 crash. Clamped, the overflowed ids share the top of the distribution.
float scaled_logit(float z, float temperature) {
  if (std::isnan(z)) return -INFINITY;
  const float v = z / temperature;
  return v == INFINITY ? std::numeric_limits<float>::max() : v;
}

int32_t argmax(const std::vector<float> &z) {
  int32_t best = 0;
  for (int32_t i = 1; i < (int32_t)z.size(); i++)
    if (rank_key(z[i]) > rank_key(z[best])) best = i;
  return best;
}

// The candidates a draw may pick, best first, with e = p_i / p_max. Only what the filters need
// is sorted: top-k partially; top-p only the ids above a threshold that already hold top_p of
// the mass (the top-p prefix lies inside them); with neither, the ids stay in id order.
struct Candidates {
  std::vector<int32_t> ids;
  std::vector<double> e;
  bool sorted = true;
};

Candidates candidates(const std::vector<float> &z, float zmax, const SamplingParams &p) {
  const int64_t V = (int64_t)z.size();
  const ByValueDesc cmp{z.data()};
  Candidates c;
  if (p.top_k > 0 && p.top_k < V) {
    c.ids.resize(V);
    for (int32_t i = 0; i < V; i++) c.ids[i] = i;
    std::partial_sort(c.ids.begin(), c.ids.begin() + p.top_k, c.ids.end(), cmp);
    c.ids.resize(p.top_k);
  } else {
    std::vector<double> e(V);
    double total = 0;
    for (int64_t i = 0; i < V; i++) total += (e[i] = std::exp((double)z[i] - zmax));
    double threshold = p.top_p < 1.0f ? 1e-4 : 0.0;
    for (;; threshold *= 1e-4) {
      if (threshold < 1e-300) threshold = 0;
      c.ids.clear();
      double mass = 0;
      for (int32_t i = 0; i < V; i++)
        if (e[i] >= threshold && e[i] > 0) c.ids.push_back(i), mass += e[i];
      if (threshold == 0 || mass >= p.top_p * total) break;
    }
    if (p.top_p < 1.0f) std::sort(c.ids.begin(), c.ids.end(), cmp);
    else c.sorted = false;
  }
  c.e.resize(c.ids.size());
  for (size_t i = 0; i < c.ids.size(); i++) c.e[i] = std::exp((double)z[c.ids[i]] - zmax);
  return c;
}

int32_t draw(std::vector<float> &z, const SamplingParams &p) {
  float zmax = -INFINITY;
  int32_t best = 0;
  for (int32_t i = 0; i < (int32_t)z.size(); i++) {
    z[i] = scaled_logit(z[i], p.temperature);
    if (z[i] > zmax) zmax = z[i], best = i;
  }
  if (zmax == -INFINITY) return best;  // everything masked: fall back to the first id
  Candidates c = candidates(z, zmax, p);
  const int64_t n = (int64_t)c.ids.size();
  if (n == 0) return best;  // unreachable with a finite zmax (its own e is 1); never index an empty list

  int64_t keep = n;
  if (p.top_p < 1.0f) {  // smallest prefix whose probability mass reaches top_p (of the top-k set)
    double total = 0, cum = 0;
    if (p.top_k > 0) for (double x : c.e) total += x;
    else for (float l : z) total += std::exp((double)l - zmax);
    for (int64_t i = 0; i < n; i++) {
      cum += c.e[i];
      if (cum >= p.top_p * total) {
        keep = i + 1;
        break;
      }
    }
  }
  std::vector<char> dropped(keep, 0);
  if (p.min_p > 0.0f)  // drop p_i < min_p * p_max; the best id (e = 1) always survives
    for (int64_t i = 0; i < keep; i++) dropped[i] = c.e[i] < p.min_p;
  double kept = 0;
  for (int64_t i = 0; i < keep; i++)
    if (!dropped[i]) kept += c.e[i];
  const double target = uniform01(p.seed, (uint64_t)p.position) * kept;
  double cum = 0;
  int32_t last = c.ids[0];
  for (int64_t i = 0; i < keep; i++) {
    if (dropped[i]) continue;
    if (!(c.e[i] > 0)) continue;  // a -inf (masked) id in the top-k set carries no mass
    cum += c.e[i];
    last = c.ids[i];
    if (target < cum) return c.ids[i];
  }
  return last;  // rounding: target == kept
}

}  // namespace

double uniform01(uint64_t seed, uint64_t counter) {
  const uint64_t h = splitmix64(seed ^ splitmix64(counter ^ 0x5851F42D4C957F2Dull));
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

void sample_token(const float *logits, int64_t V, const SamplingParams &p, const SampleOut &out) {
  std::vector<float> z(logits, logits + V);
  apply_penalties(z, p);
  if (p.mask) apply_mask(z, p.mask);
  const int32_t id = p.temperature == 0.0f ? argmax(z) : draw(z, p);
  *out.id = id;

  raw_logprobs(logits, V, id, out);
}

void raw_logprobs(const float *logits, int64_t V, int32_t id, const SampleOut &out) {
  if (!out.logprob && !(out.num_logprobs > 0 && (out.top_ids || out.top_logprobs))) return;
  // Log-softmax of the raw logits (before penalties and temperature).
  float mx = -INFINITY;
  for (int64_t i = 0; i < V; i++) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; i++) sum += std::exp((double)logits[i] - mx);
  const double lse = mx + std::log(sum);
  if (out.logprob) *out.logprob = (float)(logits[id] - lse);
  if (out.num_logprobs > 0) {
    const int64_t k = std::min<int64_t>(out.num_logprobs, V);
    std::vector<int32_t> ids(V);
    for (int32_t i = 0; i < V; i++) ids[i] = i;
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), ByValueDesc{logits});
    for (int64_t i = 0; i < out.num_logprobs; i++) {
      const int32_t tid = i < k ? ids[i] : -1;
      if (out.top_ids) out.top_ids[i] = tid;
      if (out.top_logprobs) out.top_logprobs[i] = i < k ? (float)(logits[tid] - lse) : -INFINITY;
    }
  }
}

}  // namespace cpu
}  // namespace fg
