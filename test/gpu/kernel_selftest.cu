// Self-test of the CUDA backend's kernels (native/src/cuda/*.cu) against float64 CPU
// references on fresh random inputs (seed = argv[1]). Outputs are poisoned (NaN) before each
// launch; every output element must be written (cache slots outside slot_mapping must stay
// untouched). Prints one JSON line per check: {"kernel", "dtype", "relError", "bound",
// "unwritten", "untouchedViolations"}; relError = ‖out − ref‖₂ / ‖ref‖₂. Bounds: float32 1e-5
// (1e-4 where --use_fast_math's exp enters), bfloat16 1e-2 (bf16 storage of inputs/outputs).
// Built and run by test/gpu/kernels.test.ts.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "kernels.h"
#include "logit_adjust.h"
#include "rope_frequencies.h"

using namespace spindle;
using namespace spindle::cuda;

namespace {

std::mt19937_64 rng;

std::vector<float> RandomFloats(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
int RandomInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

template <typename T> T ToT(float x);
template <> float ToT<float>(float x) { return x; }
template <> __nv_bfloat16 ToT<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <typename T> float FromT(T x);
template <> float FromT<float>(float x) { return x; }
template <> float FromT<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> const char* Name();
template <> const char* Name<float>() { return "float32"; }
template <> const char* Name<__nv_bfloat16>() { return "bfloat16"; }

// Values as the device will see them (rounded to T), for the reference to start from.
template <typename T>
std::vector<float> Rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = FromT(ToT<T>(v[i]));
  return r;
}

// A device array of T, uploaded from floats or poisoned with NaN.
template <typename T>
struct Dev {
  T* ptr = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T))); }
  Dev(const std::vector<float>& v) : Dev(v.size()) { Upload(v); }
  ~Dev() { cudaFree(ptr); }
  void Upload(const std::vector<float>& v) {
    std::vector<T> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = ToT<T>(v[i]);
    CUDA_CHECK(cudaMemcpy(ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void Poison() { Upload(std::vector<float>(n, NAN)); }
  std::vector<float> Download() const {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = FromT(h[i]);
    return v;
  }
};

struct DevInts {
  int32_t* ptr = nullptr;
  explicit DevInts(const std::vector<int32_t>& v) {
    CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(v.size(), 1) * 4));
    CUDA_CHECK(cudaMemcpy(ptr, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  }
  ~DevInts() { cudaFree(ptr); }
};

struct Error {
  double num = 0, den = 0;
  long unwritten = 0;
  void Add(float out, double ref) {
    if (std::isnan(out)) {
      ++unwritten;
      return;
    }
    num += (out - ref) * (out - ref);
    den += ref * ref;
  }
  double rel() const { return den > 0 ? std::sqrt(num / den) : std::sqrt(num); }
};

void Report(const char* kernel, const char* dtype, const Error& e, double bound, long untouched_violations = 0) {
  std::printf("{\"kernel\":\"%s\",\"dtype\":\"%s\",\"relError\":%.3e,\"bound\":%.1e,\"unwritten\":%ld,\"untouchedViolations\":%ld}\n",
              kernel, dtype, e.rel(), bound, e.unwritten, untouched_violations);
  std::fflush(stdout);
}

template <typename T> double Bound(double f32) { return sizeof(T) == 4 ? f32 : 1e-2; }

// ---- embedding ----
template <typename T>
void CheckEmbedding() {
  const int vocab = 1000, hidden = 300, n = 77;
  std::vector<float> table = Rounded<T>(RandomFloats(size_t(vocab) * hidden, -1, 1));
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = RandomInt(0, vocab - 1);
  Dev<T> d_table(table), d_out(size_t(n) * hidden);
  DevInts d_ids(ids);
  d_out.Poison();
  EmbeddingGather<T>(d_ids.ptr, d_table.ptr, d_out.ptr, n, hidden, vocab, 0);
  std::vector<float> out = d_out.Download();
  Error e;
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < hidden; ++i) e.Add(out[size_t(t) * hidden + i], table[size_t(ids[t]) * hidden + i]);
  Report("embedding", Name<T>(), e, 0.0);
}

// ---- fused residual add + RMSNorm ----
template <typename T>
void CheckRmsNorm(bool with_delta) {
  const int rows = 37, hidden = 1000;
  const float eps = 1e-5f;
  std::vector<float> res = Rounded<T>(RandomFloats(size_t(rows) * hidden, -2, 2));
  std::vector<float> del = Rounded<T>(RandomFloats(size_t(rows) * hidden, -2, 2));
  std::vector<float> w = Rounded<T>(RandomFloats(hidden, 0.5f, 1.5f));
  Dev<T> d_res(res), d_del(del), d_w(w), d_out(size_t(rows) * hidden);
  d_out.Poison();
  FusedAddRmsNorm<T>(with_delta ? d_del.ptr : nullptr, d_res.ptr, d_w.ptr, d_out.ptr, rows, hidden, eps, 0);
  std::vector<float> out = d_out.Download(), new_res = d_res.Download();
  Error e_out, e_res;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> x(hidden);
    double ss = 0;
    for (int i = 0; i < hidden; ++i) {
      const size_t k = size_t(r) * hidden + i;
      x[i] = double(res[k]) + (with_delta ? double(del[k]) : 0.0);
      ss += x[i] * x[i];
      e_res.Add(new_res[k], x[i]);
    }
    const double rstd = 1.0 / std::sqrt(ss / hidden + eps);
    for (int i = 0; i < hidden; ++i) e_out.Add(out[size_t(r) * hidden + i], x[i] * rstd * w[i]);
  }
  const std::string name = with_delta ? "fused_add_rms_norm" : "rms_norm";
  Report((name + ".out").c_str(), Name<T>(), e_out, Bound<T>(1e-5));
  Report((name + ".residual").c_str(), Name<T>(), e_res, Bound<T>(1e-6));
}

// ---- bias + q/k norm + RoPE + paged KV write ----
std::vector<double> InvFreqF64(const ModelConfig& m) {
  std::vector<double> inv(m.head_dim / 2);
  for (int i = 0; i < m.head_dim / 2; ++i) {
    double f = 1.0 / std::pow(double(m.rope_theta), double(2 * i) / m.head_dim);
    if (m.has_llama3_rope_scaling) {
      const double old_len = m.rope_original_max_position_embeddings;
      const double wavelen = 2 * M_PI / f;
      const double low = old_len / m.rope_low_freq_factor, high = old_len / m.rope_high_freq_factor;
      if (wavelen > low) f = f / m.rope_factor;
      else if (wavelen >= high) {
        const double s = (old_len / wavelen - m.rope_low_freq_factor) / (m.rope_high_freq_factor - m.rope_low_freq_factor);
        f = (1 - s) * f / m.rope_factor + s * f;
      }
    }
    inv[i] = f;
  }
  return inv;
}

template <typename T>
void CheckQkvRope(int head_dim, bool bias, bool qk_norm, bool llama3) {
  ModelConfig m;
  m.head_dim = head_dim;
  m.rope_theta = 500000.f;
  m.has_llama3_rope_scaling = llama3;
  m.rope_factor = 8.f;
  m.rope_original_max_position_embeddings = 64;
  const int nh = 8, nkv = 2, nt = 29, block_size = 16, num_blocks = 8;
  const int width = (nh + 2 * nkv) * head_dim;
  const float eps = 1e-6f;
  std::vector<float> qkv = Rounded<T>(RandomFloats(size_t(nt) * width, -2, 2));
  std::vector<float> b = Rounded<T>(RandomFloats(width, -0.5f, 0.5f));
  std::vector<float> qn = Rounded<T>(RandomFloats(head_dim, 0.5f, 1.5f)), kn = Rounded<T>(RandomFloats(head_dim, 0.5f, 1.5f));
  std::vector<int32_t> pos(nt), slots(nt);
  std::vector<int32_t> all_slots(num_blocks * block_size);
  for (int i = 0; i < int(all_slots.size()); ++i) all_slots[i] = i;
  std::shuffle(all_slots.begin(), all_slots.end(), rng);
  for (int t = 0; t < nt; ++t) {
    pos[t] = RandomInt(0, 6000);
    slots[t] = t == 3 ? -1 : all_slots[t];  // one padding token: writes nothing
  }
  const std::vector<float> inv32 = RopeInverseFrequencies(m);
  const std::vector<double> inv64 = InvFreqF64(m);
  Dev<T> d_qkv(qkv), d_b(b), d_qn(qn), d_kn(kn);
  Dev<float> d_inv(inv32);
  const size_t cache_elems = size_t(num_blocks) * block_size * nkv * head_dim;
  Dev<T> d_k(cache_elems), d_v(cache_elems);
  d_k.Poison();
  d_v.Poison();
  DevInts d_pos(pos), d_slots(slots);
  QkvRopeKvWrite<T>(d_qkv.ptr, bias ? d_b.ptr : nullptr, qk_norm ? d_qn.ptr : nullptr, qk_norm ? d_kn.ptr : nullptr,
                    d_inv.ptr, d_pos.ptr, d_slots.ptr, d_k.ptr, d_v.ptr, nt, nh, nkv, head_dim, eps, 0);
  std::vector<float> out = d_qkv.Download(), kc = d_k.Download(), vc = d_v.Download();
  Error e_q, e_k, e_v;
  std::vector<char> written(cache_elems / head_dim, 0);
  for (int t = 0; t < nt; ++t) {
    for (int h = 0; h < nh + 2 * nkv; ++h) {
      std::vector<double> x(head_dim);
      for (int d = 0; d < head_dim; ++d) x[d] = qkv[size_t(t) * width + h * head_dim + d] + (bias ? b[h * head_dim + d] : 0.0);
      const bool is_q = h < nh, is_k = !is_q && h < nh + nkv;
      if (qk_norm && (is_q || is_k)) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double rstd = 1.0 / std::sqrt(ss / head_dim + eps);
        for (int d = 0; d < head_dim; ++d) x[d] = x[d] * rstd * (is_q ? qn[d] : kn[d]);
      }
      std::vector<double> y = x;
      if (is_q || is_k) {
        const int half = head_dim / 2;
        for (int d = 0; d < head_dim; ++d) {
          // The angle as the framework forms it: a float32 product (float64 elsewhere).
          const double angle = double(float(pos[t]) * float(inv64[d % half]));
          const double rot = d < half ? -x[d + half] : x[d - half];
          y[d] = x[d] * std::cos(angle) + rot * std::sin(angle);
        }
      }
      for (int d = 0; d < head_dim; ++d) {
        if (is_q) {
          e_q.Add(out[size_t(t) * width + h * head_dim + d], y[d]);
        } else if (slots[t] >= 0) {
          const int kvh = is_k ? h - nh : h - nh - nkv;
          const size_t at = (size_t(slots[t]) * nkv + kvh) * head_dim + d;
          (is_k ? e_k : e_v).Add((is_k ? kc : vc)[at], y[d]);
          written[at / head_dim] = 1;
        }
      }
    }
  }
  long violations = 0;  // cache rows no token maps to must keep their poison
  for (size_t r = 0; r < written.size(); ++r)
    if (!written[r])
      for (int d = 0; d < head_dim; ++d) violations += !std::isnan(kc[r * head_dim + d]) + !std::isnan(vc[r * head_dim + d]);
  char name[96];
  std::snprintf(name, sizeof name, "qkv_rope_kv_write.hd%d%s%s%s", head_dim, bias ? ".bias" : "", qk_norm ? ".qknorm" : "",
                llama3 ? ".llama3" : "");
  // RoPE at positions up to 6000: one float32 ulp of difference in an inverse frequency moves
  // the angle by up to ~3e-4 rad, hence 2e-4 for float32.
  Report((std::string(name) + ".q").c_str(), Name<T>(), e_q, Bound<T>(2e-4), 0);
  Report((std::string(name) + ".k_cache").c_str(), Name<T>(), e_k, Bound<T>(2e-4), violations);
  Report((std::string(name) + ".v_cache").c_str(), Name<T>(), e_v, Bound<T>(1e-6), violations);
}

// ---- SiLU * mul ----
template <typename T>
void CheckSiluMul() {
  const int rows = 13, inter = 700;
  std::vector<float> gu = Rounded<T>(RandomFloats(size_t(rows) * 2 * inter, -6, 6));
  Dev<T> d_gu(gu), d_out(size_t(rows) * inter);
  d_out.Poison();
  SiluMul<T>(d_gu.ptr, d_out.ptr, rows, inter, 0);
  std::vector<float> out = d_out.Download();
  Error e;
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < inter; ++i) {
      const double g = gu[size_t(r) * 2 * inter + i], u = gu[size_t(r) * 2 * inter + inter + i];
      e.Add(out[size_t(r) * inter + i], g / (1 + std::exp(-g)) * u);
    }
  Report("silu_mul", Name<T>(), e, Bound<T>(1e-5));
}

// ---- gather last token rows ----
template <typename T>
void CheckGather() {
  const int hidden = 200;
  std::vector<int32_t> qsl = {0, 5, 6, 30, 31};
  const int ns = int(qsl.size()) - 1, nt = qsl.back();
  std::vector<float> in = Rounded<T>(RandomFloats(size_t(nt) * hidden, -1, 1));
  Dev<T> d_in(in), d_out(size_t(ns) * hidden);
  d_out.Poison();
  DevInts d_qsl(qsl);
  GatherLastTokenRows<T>(d_in.ptr, d_qsl.ptr, d_out.ptr, ns, hidden, 0);
  std::vector<float> out = d_out.Download();
  Error e;
  for (int s = 0; s < ns; ++s)
    for (int i = 0; i < hidden; ++i) e.Add(out[size_t(s) * hidden + i], in[size_t(qsl[s + 1] - 1) * hidden + i]);
  Report("gather_last_token_rows", Name<T>(), e, 0.0);
}

// ---- attention (decode and prefill) over a random paged cache ----
struct PagedCase {
  int nh, nkv, hd, block_size = 16;
  std::vector<int> q_lens, seq_lens;  // per sequence
};

template <typename T>
void CheckAttention(const PagedCase& c, bool decode, int num_splits, const char* label, bool per_seq_split = false) {
  const int ns = int(c.q_lens.size());
  int max_blocks = 0, total_blocks = 0, nt = 0, max_q = 0;
  for (int s = 0; s < ns; ++s) {
    const int nb = (c.seq_lens[s] + c.block_size - 1) / c.block_size;
    max_blocks = std::max(max_blocks, nb);
    total_blocks += nb;
    nt += c.q_lens[s];
    max_q = std::max(max_q, c.q_lens[s]);
  }
  total_blocks += 3;  // blocks no sequence uses
  std::vector<int32_t> perm(total_blocks);
  for (int i = 0; i < total_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> tables(size_t(ns) * max_blocks, 0), qsl(ns + 1, 0), positions(nt);
  int next = 0;
  for (int s = 0; s < ns; ++s) {
    const int nb = (c.seq_lens[s] + c.block_size - 1) / c.block_size;
    for (int b = 0; b < nb; ++b) tables[size_t(s) * max_blocks + b] = perm[next++];
    qsl[s + 1] = qsl[s] + c.q_lens[s];
    for (int i = 0; i < c.q_lens[s]; ++i) positions[qsl[s] + i] = c.seq_lens[s] - c.q_lens[s] + i;
  }
  const int q_stride = (c.nh + 2 * c.nkv) * c.hd;
  const size_t cache_elems = size_t(total_blocks) * c.block_size * c.nkv * c.hd;
  std::vector<float> q = Rounded<T>(RandomFloats(size_t(nt) * q_stride, -2, 2));
  std::vector<float> kc = Rounded<T>(RandomFloats(cache_elems, -2, 2)), vc = Rounded<T>(RandomFloats(cache_elems, -2, 2));
  Dev<T> d_q(q), d_k(kc), d_v(vc), d_out(size_t(nt) * c.nh * c.hd);
  d_out.Poison();
  DevInts d_tables(tables), d_qsl(qsl), d_pos(positions), d_lens(std::vector<int32_t>(c.seq_lens.begin(), c.seq_lens.end()));
  const AttentionShape shape{ns, nt, c.nh, c.nkv, c.hd, c.block_size, max_blocks, q_stride};
  if (decode) {
    int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
    // per_seq_split: split_tokens 0, each sequence cut by its own length (CUDA graphs).
    int split_tokens = per_seq_split ? 0 : ((max_len + num_splits - 1) / num_splits + 15) / 16 * 16;
    Dev<float> ws(DecodeAttentionWorkspaceBytes(ns, c.nh, c.hd, num_splits) / 4);
    PagedDecodeAttention<T>(d_q.ptr, d_k.ptr, d_v.ptr, d_tables.ptr, d_lens.ptr, d_out.ptr, ws.ptr, shape, num_splits,
                            split_tokens, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
  } else {
    PrefillAttention<T>(d_q.ptr, d_k.ptr, d_v.ptr, d_tables.ptr, d_lens.ptr, d_qsl.ptr, d_pos.ptr, d_out.ptr, shape, max_q, 0);
  }
  std::vector<float> out = d_out.Download();
  Error e;
  const int group = c.nh / c.nkv;
  const double scale = 1.0 / std::sqrt(double(c.hd));
  for (int s = 0; s < ns; ++s)
    for (int i = 0; i < c.q_lens[s]; ++i) {
      const int t = qsl[s] + i, pos = positions[t];
      for (int h = 0; h < c.nh; ++h) {
        const int kvh = h / group;
        std::vector<double> score(pos + 1);
        double mx = -1e300;
        for (int j = 0; j <= pos; ++j) {
          const size_t slot = size_t(tables[size_t(s) * max_blocks + j / c.block_size]) * c.block_size + j % c.block_size;
          double dot = 0;
          for (int d = 0; d < c.hd; ++d) dot += double(q[size_t(t) * q_stride + h * c.hd + d]) * kc[(slot * c.nkv + kvh) * c.hd + d];
          score[j] = dot * scale;
          mx = std::max(mx, score[j]);
        }
        double sum = 0;
        for (double& sc : score) sum += (sc = std::exp(sc - mx));
        for (int d = 0; d < c.hd; ++d) {
          double o = 0;
          for (int j = 0; j <= pos; ++j) {
            const size_t slot = size_t(tables[size_t(s) * max_blocks + j / c.block_size]) * c.block_size + j % c.block_size;
            o += score[j] * vc[(slot * c.nkv + kvh) * c.hd + d];
          }
          e.Add(out[(size_t(t) * c.nh + h) * c.hd + d], o / sum);
        }
      }
    }
  Report(label, Name<T>(), e, Bound<T>(1e-4));
}

// ---- decode graph inputs: columns copied into fixed buffers, padding rows past num_seqs ----
void CheckPadDecodeGraphInputs() {
  const int ns = 5, padded = 8, in_width = 7, width = 10, bs = 16;
  const int32_t kSentinel = -777;  // entries the kernel must leave alone
  std::vector<int32_t> ids(ns), pos(ns), slots(ns), lens(ns), tables(size_t(ns) * in_width);
  for (int s = 0; s < ns; ++s) {
    lens[s] = RandomInt(1, in_width * bs);
    ids[s] = RandomInt(0, 1000);
    pos[s] = lens[s] - 1;
    slots[s] = RandomInt(0, 5000);
    for (int j = 0; j < in_width; ++j) tables[size_t(s) * in_width + j] = RandomInt(0, 300);
  }
  DevInts d_ids(ids), d_pos(pos), d_slots(slots), d_lens(lens), d_tables(tables);
  std::vector<int32_t> poisoned(size_t(padded) * (4 + width), kSentinel);
  DevInts d_dst(poisoned);
  const DecodeGraphInputs dst{d_dst.ptr, d_dst.ptr + padded, d_dst.ptr + 2 * padded, d_dst.ptr + 3 * padded,
                              d_dst.ptr + 4 * padded};
  PadDecodeGraphInputs(d_ids.ptr, d_pos.ptr, d_slots.ptr, d_lens.ptr, d_tables.ptr, ns, in_width, bs, dst, padded, width, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<int32_t> out(poisoned.size());
  CUDA_CHECK(cudaMemcpy(out.data(), d_dst.ptr, out.size() * 4, cudaMemcpyDeviceToHost));
  long wrong = 0;
  Error e;
  for (int r = 0; r < padded; ++r) {
    const bool real = r < ns;
    const int32_t want[4] = {real ? ids[r] : 0, real ? pos[r] : 0, real ? slots[r] : -1, real ? lens[r] : 0};
    for (int c = 0; c < 4; ++c) wrong += out[size_t(c) * padded + r] != want[c];
    const int used = real ? (lens[r] + bs - 1) / bs : 0;
    for (int j = 0; j < width; ++j) {
      const int32_t got = out[4 * size_t(padded) + size_t(r) * width + j];
      wrong += got != (j < used ? tables[size_t(r) * in_width + j] : kSentinel);
    }
  }
  Report("pad_decode_graph_inputs", "int32", e, 0.0, wrong);
}

// ---- logit adjustments (logit_bias, min_tokens bans): each sampled row's listed ids get
// logit + bias, or -inf for a ban; nothing else is touched (other ids, unsampled rows, padding) ----
void CheckLogitAdjusts() {
  const int ns = 7, vocab = 1000;
  const int64_t stride = vocab + 5;  // rows padded: the kernel must use the stride
  std::vector<float> logits = RandomFloats(size_t(ns) * stride, -8, 8);
  std::vector<int32_t> sampled = {1, 0, 1, 1, 1, 0, 1}, offsets = {0}, tokens;
  std::vector<float> values;
  std::vector<int32_t> ids(vocab);
  for (int i = 0; i < vocab; ++i) ids[i] = i;
  for (int s = 0; s < ns; ++s) {
    // Distinct ids within a row (the executor's contract), some shared with other rows.
    const int n = s == 3 ? 0 : RandomInt(1, 60);  // row 3 adjusts nothing
    std::shuffle(ids.begin(), ids.end(), rng);
    for (int i = 0; i < n; ++i) {
      tokens.push_back(ids[i]);
      values.push_back(RandomInt(0, 2) == 0 ? -INFINITY : RandomFloats(1, -100, 100)[0]);  // a third are bans
    }
    offsets.push_back(int32_t(tokens.size()));
  }
  Dev<float> d_logits(logits), d_values(values);
  DevInts d_sampled(sampled), d_offsets(offsets), d_tokens(tokens);
  ApplyLogitAdjusts(d_logits.ptr, stride, d_sampled.ptr, d_offsets.ptr, d_tokens.ptr, d_values.ptr, ns, 0);
  std::vector<float> out = d_logits.Download();
  // The reference, in float64: +bias on the listed ids, -inf where banned, the rest unchanged.
  std::vector<double> ref(logits.begin(), logits.end());
  std::vector<uint8_t> listed(logits.size(), 0);
  for (int s = 0; s < ns; ++s) {
    if (!sampled[s]) continue;
    for (int i = offsets[s]; i < offsets[s + 1]; ++i) {
      const size_t at = size_t(s) * stride + tokens[i];
      ref[at] = std::isinf(values[i]) ? -INFINITY : double(logits[at]) + double(values[i]);
      listed[at] = 1;
    }
  }
  Error e;
  long violations = 0;  // banned and not -inf, or not listed and changed
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isinf(ref[i])) {
      violations += !(std::isinf(out[i]) && out[i] < 0);
    } else if (!listed[i]) {
      violations += out[i] != logits[i];
    } else {
      e.Add(out[i], ref[i]);
    }
  }
  // One float32 rounding of each sum: relative error <= 2^-24 per element.
  Report("apply_logit_adjusts", "float32", e, 1e-6, violations);
}

// ---- greedy placeholder sampler ----
void CheckGreedyPlaceholder() {
  const int ns = 5, vocab = 3000, max_top = 4;
  std::vector<float> logits = RandomFloats(size_t(ns) * vocab, -8, 8);
  std::vector<int32_t> sampled = {1, 1, 0, 1, 1}, nlp = {0, 4, 2, 2, 1};
  Dev<float> d_logits(logits), d_lp(ns), d_top_lp(size_t(ns) * max_top);
  DevInts d_sampled(sampled), d_nlp(nlp), d_ids(std::vector<int32_t>(ns, -7)), d_top_ids(std::vector<int32_t>(ns * max_top, -7));
  d_lp.Poison();
  d_top_lp.Poison();
  GreedySamplePlaceholder(d_logits.ptr, vocab, d_sampled.ptr, d_nlp.ptr, ns, vocab, max_top, d_ids.ptr, d_lp.ptr,
                          d_top_ids.ptr, d_top_lp.ptr, 0);
  std::vector<float> lp = d_lp.Download(), top_lp = d_top_lp.Download();
  std::vector<int32_t> ids(ns), top_ids(ns * max_top);
  CUDA_CHECK(cudaMemcpy(ids.data(), d_ids.ptr, ns * 4, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(top_ids.data(), d_top_ids.ptr, ns * max_top * 4, cudaMemcpyDeviceToHost));
  Error e;
  long wrong_ids = 0;
  for (int s = 0; s < ns; ++s) {
    const float* x = &logits[size_t(s) * vocab];
    std::vector<int> order(vocab);
    for (int i = 0; i < vocab; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return x[a] > x[b]; });
    double mx = x[order[0]], sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(double(x[i]) - mx);
    const double log_z = mx + std::log(sum);
    if (!sampled[s]) {
      wrong_ids += ids[s] != -1;
      continue;
    }
    wrong_ids += ids[s] != order[0];
    e.Add(lp[s], x[order[0]] - log_z);
    for (int k = 0; k < max_top; ++k) {
      if (k < nlp[s]) {
        wrong_ids += top_ids[s * max_top + k] != order[k];
        e.Add(top_lp[s * max_top + k], x[order[k]] - log_z);
      } else {
        wrong_ids += top_ids[s * max_top + k] != -1;
      }
    }
  }
  e.unwritten += wrong_ids;  // a wrong id counts as an unwritten (wrong) output
  Report("greedy_sample_placeholder", "float32", e, 1e-5);
}

// ---- weight conversion ----
template <typename T>
void CheckConvert() {
  const size_t n = 5000;
  std::vector<float> src = RandomFloats(n, -3, 3);
  std::vector<__half> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = __float2half_rn(src[i]);
  void* d_src = nullptr;
  CUDA_CHECK(cudaMalloc(&d_src, n * 2));
  CUDA_CHECK(cudaMemcpy(d_src, h.data(), n * 2, cudaMemcpyHostToDevice));
  Dev<T> d_out(n);
  d_out.Poison();
  ConvertToDtype<T>(d_src, 2, d_out.ptr, n, 0);
  std::vector<float> out = d_out.Download();
  cudaFree(d_src);
  Error e;
  for (size_t i = 0; i < n; ++i) e.Add(out[i], FromT(ToT<T>(__half2float(h[i]))));
  Report("convert_f16", Name<T>(), e, 0.0);
}

template <typename T>
void CheckAll() {
  CheckEmbedding<T>();
  CheckRmsNorm<T>(true);
  CheckRmsNorm<T>(false);
  CheckQkvRope<T>(128, false, false, true);
  CheckQkvRope<T>(64, true, false, false);
  CheckQkvRope<T>(128, false, true, false);
  CheckQkvRope<T>(8, false, false, false);
  CheckSiluMul<T>();
  CheckGather<T>();
  CheckConvert<T>();
  // Llama-3-8B heads (32 q, 8 kv, hd 128): decode, with and without context splits.
  PagedCase llama{32, 8, 128, 16, {1, 1, 1, 1, 1, 1, 1}, {1, 17, 300, 64, 700, 33, 129}};
  CheckAttention<T>(llama, true, 1, "paged_decode_attention.gqa4.hd128");
  CheckAttention<T>(llama, true, 5, "paged_decode_attention.gqa4.hd128.split5");
  CheckAttention<T>(llama, true, 7, "paged_decode_attention.gqa4.hd128.split7.per_seq", true);
  PagedCase qwen{16, 2, 64, 16, {1, 1, 1}, {500, 2, 77}};
  CheckAttention<T>(qwen, true, 3, "paged_decode_attention.gqa8.hd64.split3");
  // Llama-2-style MHA (group 1) and a group of 2 at head_dim 64: the pipelined bf16 path with
  // other lanes-per-token and slots-per-warp; a 1000-token context crosses many rescales.
  PagedCase mha{4, 4, 128, 16, {1, 1, 1}, {1000, 3, 260}};
  CheckAttention<T>(mha, true, 1, "paged_decode_attention.mha.hd128");
  PagedCase gqa2{8, 4, 64, 16, {1, 1}, {45, 1000}};
  CheckAttention<T>(gqa2, true, 2, "paged_decode_attention.gqa2.hd64.split2.per_seq", true);
  // Prefill: fresh prompts, chunks after cached context, single tokens, mixed in one batch.
  PagedCase pre{8, 2, 128, 16, {5, 40, 1, 70}, {5, 57, 100, 70}};
  CheckAttention<T>(pre, false, 1, "prefill_attention.gqa4.hd128");
  // Several 64-row query tiles and 64-key tiles, partial at both ends (tensor cores in bf16).
  PagedCase pre64{8, 2, 64, 16, {150, 3, 70}, {150, 200, 130}};
  CheckAttention<T>(pre64, false, 1, "prefill_attention.gqa4.hd64.long");
  PagedCase pre8{8, 4, 8, 16, {13, 1, 33}, {13, 40, 50}};
  CheckAttention<T>(pre8, false, 1, "prefill_attention.gqa2.hd8");
  PagedCase pre256{4, 4, 256, 16, {20, 3}, {20, 45}};
  CheckAttention<T>(pre256, false, 1, "prefill_attention.mha.hd256");
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  rng.seed(seed);
  try {
    CheckAll<float>();
    CheckAll<__nv_bfloat16>();
    CheckGreedyPlaceholder();
    CheckLogitAdjusts();
    CheckPadDecodeGraphInputs();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_selftest: %s\n", e.what());
    return 1;
  }
  return 0;
}
