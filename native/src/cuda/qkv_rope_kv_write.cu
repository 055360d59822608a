// Everything between the fused q|k|v projection and attention, in one pass over it:
// bias (Qwen2), per-head q/k RMSNorm (Qwen3), RoPE (HF rotate_half) on q and k, and the
// write of k and v into the paged cache through slot_mapping.
#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

constexpr int kMaxHeadDim = 256;

// One warp per (token, head); heads [0, nh) are q, [nh, nh + nkv) k, then v.
template <typename T>
__global__ void qkv_rope_kv_write_kernel(T* qkv /* [num_tokens, (nh + 2 nkv) * hd] */,
                                         const T* bias /* [(nh + 2 nkv) * hd] or null */,
                                         const T* q_norm /* [hd] or null */, const T* k_norm /* [hd] or null */,
                                         const float* inv_freq /* [hd / 2] */, const int32_t* positions,
                                         const int32_t* slot_mapping, T* k_cache /* [blocks, bs, nkv, hd] */,
                                         T* v_cache, int num_heads, int num_kv_heads, int head_dim, float eps) {
  __shared__ float row[kMaxHeadDim];  // this head's values, for RoPE's partner element
  const int t = blockIdx.x;
  const int h = blockIdx.y;
  const int lane = threadIdx.x;
  const int row_width = (num_heads + 2 * num_kv_heads) * head_dim;
  T* x = qkv + static_cast<size_t>(t) * row_width + static_cast<size_t>(h) * head_dim;
  const bool is_q = h < num_heads, is_k = !is_q && h < num_heads + num_kv_heads;
  const bool is_v = !is_q && !is_k;

  float sum_sq = 0.f;
  for (int d = lane; d < head_dim; d += 32) {
    float v = ToFloat(x[d]);
    if (bias) v = RoundTo<T>(v + ToFloat(bias[h * head_dim + d]));
    row[d] = v;
    sum_sq += v * v;
  }
  const T* norm_w = is_q ? q_norm : (is_k ? k_norm : nullptr);
  if (norm_w) {
    const float rstd = rsqrtf(WarpSum(sum_sq) / head_dim + eps);
    for (int d = lane; d < head_dim; d += 32) row[d] = RoundTo<T>(RoundTo<T>(row[d] * rstd) * ToFloat(norm_w[d]));
  }
  __syncwarp();

  const int slot = slot_mapping[t];
  const int kv_head = h - num_heads - (is_v ? num_kv_heads : 0);
  T* cache_row = nullptr;
  if (!is_q && slot >= 0)
    cache_row = (is_k ? k_cache : v_cache) + (static_cast<size_t>(slot) * num_kv_heads + kv_head) * head_dim;

  if (is_v) {
    for (int d = lane; d < head_dim; d += 32)
      if (cache_row) cache_row[d] = FromFloat<T>(row[d]);
    return;
  }
  const int half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  float out[kMaxHeadDim / 32];
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    const int d = lane + 32 * i;
    if (d >= head_dim) break;
    const int j = d < half ? d : d - half;
    // The angle as the framework forms it (fp32 product); its sine in double, since
    // --use_fast_math would make sinf/cosf inaccurate at large angles.
    const float angle = pos * inv_freq[j];
    double s, c;
    sincos(static_cast<double>(angle), &s, &c);
    const float cos_t = RoundTo<T>(static_cast<float>(c)), sin_t = RoundTo<T>(static_cast<float>(s));
    const float rotated = d < half ? -row[d + half] : row[d - half];
    out[i] = RoundTo<T>(row[d] * cos_t) + RoundTo<T>(rotated * sin_t);
  }
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    const int d = lane + 32 * i;
    if (d >= head_dim) break;
    const T value = FromFloat<T>(out[i]);
    if (is_q) x[d] = value;
    else if (cache_row) cache_row[d] = value;
  }
}

template <typename T>
void QkvRopeKvWrite(T* qkv, const T* bias, const T* q_norm, const T* k_norm, const float* inv_freq,
                    const int32_t* positions, const int32_t* slot_mapping, T* k_cache, T* v_cache, int num_tokens,
                    int num_heads, int num_kv_heads, int head_dim, float eps, cudaStream_t stream) {
  if (num_tokens == 0) return;
  if (head_dim > kMaxHeadDim || head_dim % 2 != 0) throw std::runtime_error("QkvRopeKvWrite: unsupported head_dim");
  dim3 grid(num_tokens, num_heads + 2 * num_kv_heads);
  qkv_rope_kv_write_kernel<T><<<grid, 32, 0, stream>>>(qkv, bias, q_norm, k_norm, inv_freq, positions, slot_mapping,
                                                       k_cache, v_cache, num_heads, num_kv_heads, head_dim, eps);
  CUDA_CHECK_LAUNCH("qkv_rope_kv_write_kernel");
}

template void QkvRopeKvWrite<float>(float*, const float*, const float*, const float*, const float*, const int32_t*,
                                    const int32_t*, float*, float*, int, int, int, int, float, cudaStream_t);
template void QkvRopeKvWrite<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                            const __nv_bfloat16*, const float*, const int32_t*, const int32_t*,
                                            __nv_bfloat16*, __nv_bfloat16*, int, int, int, int, float, cudaStream_t);

}  // namespace spindle::cuda
