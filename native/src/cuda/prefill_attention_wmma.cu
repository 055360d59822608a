// Prefill attention on tensor cores (bf16 WMMA 16x16x16, fp32 accumulate), for bf16 caches
// and head_dim 64 or 128; prefill_attention.cu dispatches here and keeps the CUDA-core
// kernel for float32 and other head sizes.
// Grid (query tile of 64, query head, sequence); 4 warps, 16 query rows each. Per key tile of
// 64 (read from the paged cache into shared memory): S = Q·Kᵀ on tensor cores into shared
// memory, an online fp32 softmax per row (2 lanes per row, causal by absolute position), P
// rounded to bf16, O += P·V on tensor cores with O kept in shared memory in fp32. Memory
// O(tile) whatever the length.
#include <mma.h>

#include <cfloat>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

namespace wmma = nvcuda::wmma;

constexpr int kTcWarps = 4;
constexpr int kTcRows = 16;                  // query rows per warp
constexpr int kTcTileQ = kTcWarps * kTcRows; // 64
constexpr int kTcTileK = 64;

template <int kHeadDim>
struct TcLayout {
  static constexpr int kLdQkv = kHeadDim + 8;  // bf16 rows, padded (16 B) against bank conflicts
  static constexpr int kLdS = kTcTileK + 4;    // fp32 scores
  static constexpr int kLdP = kTcTileK + 8;    // bf16 probabilities
  static constexpr int kLdO = kHeadDim + 4;    // fp32 output accumulator
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(__nv_bfloat16) * kTcTileQ * kLdQkv;
  static constexpr size_t kV = kK + sizeof(__nv_bfloat16) * kTcTileK * kLdQkv;
  static constexpr size_t kS = kV + sizeof(__nv_bfloat16) * kTcTileK * kLdQkv;
  static constexpr size_t kP = kS + sizeof(float) * kTcWarps * kTcRows * kLdS;
  static constexpr size_t kO = kP + sizeof(__nv_bfloat16) * kTcWarps * kTcRows * kLdP;
  static constexpr size_t kPos = kO + sizeof(float) * kTcWarps * kTcRows * kLdO;
  static constexpr size_t kBytes = kPos + sizeof(int) * kTcTileQ;
};

template <int kHeadDim>
__global__ void __launch_bounds__(kTcWarps * 32)
    prefill_attention_wmma_kernel(const __nv_bfloat16* q /* [num_tokens, q_stride] */,
                                  const __nv_bfloat16* k_cache /* [num_blocks, bs, nkv, hd] */,
                                  const __nv_bfloat16* v_cache, const int32_t* block_tables /* [num_seqs, max_blocks] */,
                                  const int32_t* seq_lens, const int32_t* query_start_loc, const int32_t* positions,
                                  __nv_bfloat16* out /* [num_tokens, nh * hd] */, AttentionShape shape) {
  using L = TcLayout<kHeadDim>;
  extern __shared__ __align__(128) unsigned char smem[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem + L::kQ);  // [64, ldQkv]
  __nv_bfloat16* sK = reinterpret_cast<__nv_bfloat16*>(smem + L::kK);  // [64, ldQkv]
  __nv_bfloat16* sV = reinterpret_cast<__nv_bfloat16*>(smem + L::kV);  // [64, ldQkv]
  int* sPos = reinterpret_cast<int*>(smem + L::kPos);                  // [64]

  const int seq = blockIdx.z, head = blockIdx.y;
  const int q_begin = query_start_loc[seq], q_len = query_start_loc[seq + 1] - q_begin;
  const int tile_begin = blockIdx.x * kTcTileQ;
  if (tile_begin >= q_len) return;
  const int rows = min(kTcTileQ, q_len - tile_begin);
  const int kv_head = head / (shape.num_heads / shape.num_kv_heads);
  const int seq_len = seq_lens[seq];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* sS = reinterpret_cast<float*>(smem + L::kS) + warp * kTcRows * L::kLdS;                  // [16, ldS]
  __nv_bfloat16* sP = reinterpret_cast<__nv_bfloat16*>(smem + L::kP) + warp * kTcRows * L::kLdP;  // [16, ldP]
  float* sO = reinterpret_cast<float*>(smem + L::kO) + warp * kTcRows * L::kLdO;                  // [16, ldO]
  constexpr int kChunk = 8;  // bf16 per 16-byte load
  constexpr int kChunksPerRow = kHeadDim / kChunk;

  for (int i = threadIdx.x; i < kTcTileQ * kChunksPerRow; i += blockDim.x) {
    const int r = i / kChunksPerRow, c = (i % kChunksPerRow) * kChunk;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < rows) v = *reinterpret_cast<const uint4*>(q + static_cast<size_t>(q_begin + tile_begin + r) * shape.q_stride + head * kHeadDim + c);
    *reinterpret_cast<uint4*>(sQ + r * L::kLdQkv + c) = v;
  }
  if (threadIdx.x < kTcTileQ) sPos[threadIdx.x] = threadIdx.x < rows ? positions[q_begin + tile_begin + threadIdx.x] : -1;
  for (int i = lane; i < kTcRows * kHeadDim; i += 32) sO[(i / kHeadDim) * L::kLdO + i % kHeadDim] = 0.f;
  __syncthreads();
  int max_pos = 0;
  for (int r = 0; r < rows; ++r) max_pos = max(max_pos, sPos[r]);
  const int num_keys = min(seq_len, max_pos + 1);
  const float scale = rsqrtf(static_cast<float>(kHeadDim));

  // Softmax bookkeeping: lane handles row lane/2, columns [32 * (lane & 1), +32).
  const int my_row = lane >> 1, my_half = lane & 1;
  const int my_pos = sPos[warp * kTcRows + my_row];
  float m = -FLT_MAX, l = 0.f;
  const int32_t* table = block_tables + static_cast<size_t>(seq) * shape.max_blocks_per_seq;
  const size_t token_stride = static_cast<size_t>(shape.num_kv_heads) * kHeadDim;
  // Warps whose rows all precede the tile's keys skip the math (not the loads or barriers).
  int warp_max_pos = -1;
  for (int r = 0; r < kTcRows; ++r) warp_max_pos = max(warp_max_pos, sPos[warp * kTcRows + r]);

  for (int k0 = 0; k0 < num_keys; k0 += kTcTileK) {
    __syncthreads();  // previous K/V tile no longer read
    for (int i = threadIdx.x; i < kTcTileK * kChunksPerRow; i += blockDim.x) {
      const int j = i / kChunksPerRow, c = (i % kChunksPerRow) * kChunk, key = k0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < num_keys) {
        const size_t slot = static_cast<size_t>(table[key / shape.block_size]) * shape.block_size + key % shape.block_size;
        const size_t off = slot * token_stride + kv_head * kHeadDim + c;
        kv = *reinterpret_cast<const uint4*>(k_cache + off);
        vv = *reinterpret_cast<const uint4*>(v_cache + off);
      }
      *reinterpret_cast<uint4*>(sK + j * L::kLdQkv + c) = kv;
      *reinterpret_cast<uint4*>(sV + j * L::kLdQkv + c) = vv;
    }
    __syncthreads();
    if (warp_max_pos < k0) continue;  // every row of this warp is before these keys

    // S[16, 64] = Q_w[16, hd] · K[64, hd]ᵀ
    for (int n = 0; n < kTcTileK / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
      wmma::fill_fragment(s_frag, 0.f);
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
        wmma::load_matrix_sync(a, sQ + (warp * kTcRows) * L::kLdQkv + kk * 16, L::kLdQkv);
        wmma::load_matrix_sync(b, sK + (n * 16) * L::kLdQkv + kk * 16, L::kLdQkv);
        wmma::mma_sync(s_frag, a, b, s_frag);
      }
      wmma::store_matrix_sync(sS + n * 16, s_frag, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax over this tile's 64 columns of my row.
    float tile_max = -FLT_MAX;
    for (int c = 0; c < 32; ++c) {
      const int col = my_half * 32 + c, key = k0 + col;
      if (key <= my_pos && key < num_keys) tile_max = fmaxf(tile_max, sS[my_row * L::kLdS + col] * scale);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_m = fmaxf(m, tile_max);
    const float alpha = __expf(m - new_m);
    float sum = 0.f;
    for (int c = 0; c < 32; ++c) {
      const int col = my_half * 32 + c, key = k0 + col;
      const float p = (key <= my_pos && key < num_keys) ? __expf(sS[my_row * L::kLdS + col] * scale - new_m) : 0.f;
      const __nv_bfloat16 pb = __float2bfloat16_rn(p);
      sP[my_row * L::kLdP + col] = pb;
      sum += __bfloat162float(pb);  // the sum of exactly what multiplies V
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = new_m;
    for (int d = my_half * (kHeadDim / 2); d < (my_half + 1) * (kHeadDim / 2); ++d) sO[my_row * L::kLdO + d] *= alpha;
    __syncwarp();
    // O[16, hd] += P[16, 64] · V[64, hd]
    for (int n = 0; n < kHeadDim / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
      wmma::load_matrix_sync(o_frag, sO + n * 16, L::kLdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kTcTileK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
        wmma::load_matrix_sync(a, sP + kk * 16, L::kLdP);
        wmma::load_matrix_sync(b, sV + (kk * 16) * L::kLdQkv + n * 16, L::kLdQkv);
        wmma::mma_sync(o_frag, a, b, o_frag);
      }
      wmma::store_matrix_sync(sO + n * 16, o_frag, L::kLdO, wmma::mem_row_major);
    }
    __syncwarp();
  }
  // Normalise and write my half of my row.
  const int row = warp * kTcRows + my_row;
  if (row < rows) {
    const float inv_l = l > 0.f ? 1.f / l : 0.f;
    __nv_bfloat16* o = out + static_cast<size_t>(q_begin + tile_begin + row) * shape.num_heads * kHeadDim + head * kHeadDim;
    for (int d = my_half * (kHeadDim / 2); d < (my_half + 1) * (kHeadDim / 2); ++d)
      o[d] = __float2bfloat16_rn(sO[my_row * L::kLdO + d] * inv_l);
  }
}

bool PrefillAttentionWmmaSupported(int head_dim) { return head_dim == 64 || head_dim == 128; }

template <int kHeadDim>
static void LaunchWmma(const __nv_bfloat16* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                       const int32_t* block_tables, const int32_t* seq_lens, const int32_t* query_start_loc,
                       const int32_t* positions, __nv_bfloat16* out, const AttentionShape& shape, int max_query_len,
                       cudaStream_t stream) {
  using L = TcLayout<kHeadDim>;
  static bool raised = false;  // raise the dynamic shared-memory limit once per instantiation
  if (!raised) {
    CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_wmma_kernel<kHeadDim>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(L::kBytes)));
    raised = true;
  }
  dim3 grid((max_query_len + kTcTileQ - 1) / kTcTileQ, shape.num_heads, shape.num_seqs);
  prefill_attention_wmma_kernel<kHeadDim><<<grid, kTcWarps * 32, L::kBytes, stream>>>(
      q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, positions, out, shape);
  CUDA_CHECK_LAUNCH("prefill_attention_wmma_kernel");
}

void PrefillAttentionWmma(const __nv_bfloat16* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                          const int32_t* block_tables, const int32_t* seq_lens, const int32_t* query_start_loc,
                          const int32_t* positions, __nv_bfloat16* out, const AttentionShape& shape, int max_query_len,
                          cudaStream_t stream) {
  if (shape.num_seqs == 0 || max_query_len == 0) return;
  if (shape.head_dim == 64)
    LaunchWmma<64>(q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, positions, out, shape, max_query_len, stream);
  else if (shape.head_dim == 128)
    LaunchWmma<128>(q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, positions, out, shape, max_query_len, stream);
  else
    throw std::runtime_error("PrefillAttentionWmma: head_dim must be 64 or 128");
}

}  // namespace spindle::cuda
