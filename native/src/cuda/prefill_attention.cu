// Prefill (and mixed) attention: a tiled flash-attention-style kernel on CUDA cores.
// Grid (query tile, query head, sequence). A block holds kTileQ query rows of one head in
// shared memory, walks the sequence's keys kTileK at a time straight from the paged cache
// (earlier context and this step's tokens alike: they were written there first), and keeps
// an online fp32 softmax per row, so memory stays O(tile) whatever the length. Causal by
// absolute position: query at position p sees keys 0..p. Any head_dim up to 256. bf16 with
// head_dim 64/128 goes to the tensor-core kernel (prefill_attention_wmma.cu) instead.
#include <cfloat>
#include <type_traits>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

constexpr int kPrefillWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kTileQ = kPrefillWarps * kRowsPerWarp;  // query rows per block
constexpr int kTileK = 32;                              // keys per tile: one per lane
constexpr int kMaxDimPerLane = 8;                       // head_dim <= 256

template <typename T>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    prefill_attention_kernel(const T* q /* [num_tokens, q_stride]: heads at h * hd */,
                             const T* k_cache /* [num_blocks, bs, nkv, hd] */, const T* v_cache,
                             const int32_t* block_tables /* [num_seqs, max_blocks_per_seq] */,
                             const int32_t* seq_lens /* [num_seqs] */,
                             const int32_t* query_start_loc /* [num_seqs + 1] */,
                             const int32_t* positions /* [num_tokens] */, T* out /* [num_tokens, nh * hd] */,
                             AttentionShape shape) {
  extern __shared__ float smem[];
  const int hd = shape.head_dim;
  const int k_stride = hd + 1;               // padded: lanes read different keys' rows
  float* sq = smem;                          // [kTileQ, hd], pre-scaled
  float* sk = sq + kTileQ * hd;              // [kTileK, hd + 1]
  float* sv = sk + kTileK * k_stride;        // [kTileK, hd]
  __shared__ int s_pos[kTileQ];

  const int seq = blockIdx.z, head = blockIdx.y;
  const int q_begin = query_start_loc[seq], q_len = query_start_loc[seq + 1] - q_begin;
  const int tile_begin = blockIdx.x * kTileQ;
  if (tile_begin >= q_len) return;
  const int rows = min(kTileQ, q_len - tile_begin);
  const int kv_head = head / (shape.num_heads / shape.num_kv_heads);
  const int seq_len = seq_lens[seq];
  const float scale = rsqrtf(static_cast<float>(hd));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int i = threadIdx.x; i < kTileQ * hd; i += blockDim.x) {
    const int r = i / hd, d = i % hd;
    sq[i] = r < rows ? ToFloat(q[static_cast<size_t>(q_begin + tile_begin + r) * shape.q_stride + head * hd + d]) * scale
                     : 0.f;
  }
  if (threadIdx.x < kTileQ)
    s_pos[threadIdx.x] = threadIdx.x < rows ? positions[q_begin + tile_begin + threadIdx.x] : -1;
  __syncthreads();
  int max_pos = 0;
  for (int r = 0; r < rows; ++r) max_pos = max(max_pos, s_pos[r]);
  const int num_keys = min(seq_len, max_pos + 1);

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxDimPerLane];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -FLT_MAX;
    l[r] = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxDimPerLane; ++i) acc[r][i] = 0.f;
  }
  const int32_t* table = block_tables + static_cast<size_t>(seq) * shape.max_blocks_per_seq;
  const size_t token_stride = static_cast<size_t>(shape.num_kv_heads) * hd;

  for (int k0 = 0; k0 < num_keys; k0 += kTileK) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < kTileK * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd, key = k0 + j;
      float kval = 0.f, vval = 0.f;
      if (key < num_keys) {
        const size_t slot = static_cast<size_t>(table[key / shape.block_size]) * shape.block_size + key % shape.block_size;
        const size_t off = slot * token_stride + kv_head * hd + d;
        kval = ToFloat(k_cache[off]);
        vval = ToFloat(v_cache[off]);
      }
      sk[j * k_stride + d] = kval;
      sv[j * hd + d] = vval;
    }
    __syncthreads();
    const int key = k0 + lane;
    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.f;
    for (int d = 0; d < hd; ++d) {
      const float kd = sk[lane * k_stride + d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) s[r] += sq[(warp * kRowsPerWarp + r) * hd + d] * kd;
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int pos = s_pos[warp * kRowsPerWarp + r];
      const bool visible = key < num_keys && key <= pos;
      const float sr = visible ? s[r] : -FLT_MAX;
      const float new_m = fmaxf(m[r], WarpMax(sr));
      const float p = visible ? __expf(sr - new_m) : 0.f;
      const float alpha = __expf(m[r] - new_m);
      l[r] = l[r] * alpha + WarpSum(p);
      m[r] = new_m;
#pragma unroll
      for (int i = 0; i < kMaxDimPerLane; ++i) acc[r][i] *= alpha;
      for (int j = 0; j < kTileK; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int i = 0; i < kMaxDimPerLane; ++i) {
          const int d = lane + 32 * i;
          if (d < hd) acc[r][i] += pj * sv[j * hd + d];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    T* o = out + static_cast<size_t>(q_begin + tile_begin + row) * shape.num_heads * hd + head * hd;
    const float inv_l = l[r] > 0.f ? 1.f / l[r] : 0.f;
#pragma unroll
    for (int i = 0; i < kMaxDimPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) o[d] = FromFloat<T>(acc[r][i] * inv_l);
    }
  }
}

template <typename T>
void PrefillAttention(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                      const int32_t* seq_lens, const int32_t* query_start_loc, const int32_t* positions, T* out,
                      const AttentionShape& shape, int max_query_len, cudaStream_t stream) {
  if (shape.num_seqs == 0 || max_query_len == 0) return;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (PrefillAttentionWmmaSupported(shape.head_dim)) {
      PrefillAttentionWmma(q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, positions, out, shape,
                           max_query_len, stream);
      return;
    }
  }
  if (shape.head_dim > 32 * kMaxDimPerLane) throw std::runtime_error("PrefillAttention: head_dim > 256");
  const size_t smem_bytes =
      sizeof(float) * (static_cast<size_t>(kTileQ) * shape.head_dim + kTileK * (shape.head_dim + 1) + kTileK * shape.head_dim);
  static bool raised = false;  // per instantiation: raise the dynamic shared-memory limit once
  if (!raised) {
    CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(sizeof(float) * (kTileQ * 256 + kTileK * 257 + kTileK * 256))));
    raised = true;
  }
  dim3 grid((max_query_len + kTileQ - 1) / kTileQ, shape.num_heads, shape.num_seqs);
  prefill_attention_kernel<T><<<grid, kPrefillWarps * 32, smem_bytes, stream>>>(
      q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, positions, out, shape);
  CUDA_CHECK_LAUNCH("prefill_attention_kernel");
}

template void PrefillAttention<float>(const float*, const float*, const float*, const int32_t*, const int32_t*,
                                      const int32_t*, const int32_t*, float*, const AttentionShape&, int, cudaStream_t);
template void PrefillAttention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                              const int32_t*, const int32_t*, const int32_t*, const int32_t*,
                                              __nv_bfloat16*, const AttentionShape&, int, cudaStream_t);

}  // namespace spindle::cuda
