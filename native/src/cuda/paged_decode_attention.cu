// Decode attention over the paged KV cache: one query token per sequence.
// Grid (kv head, sequence, split). Each block reads its KV head's blocks once and scores them
// against every query head of the GQA group (queries held in registers, pre-scaled). Each warp
// walks a strided subset of the split's tokens, kUnroll at a time so several K/V rows are in
// flight, with an online fp32 softmax; warps merge through shared memory. With more than one
// split, (max, sum, unnormalised output) partials go to `workspace` and a reduce kernel merges.
#include <cfloat>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

constexpr int kDecodeWarps = 4;
constexpr int kUnroll = 4;
constexpr int kMaxGroup = 8;

template <typename T, int kElems>
struct RowVec;  // kElems consecutive T loaded as one vector
template <>
struct RowVec<__nv_bfloat16, 2> { using V = uint32_t; };
template <>
struct RowVec<__nv_bfloat16, 4> { using V = uint2; };
template <>
struct RowVec<__nv_bfloat16, 8> { using V = uint4; };
template <>
struct RowVec<float, 2> { using V = float2; };
template <>
struct RowVec<float, 4> { using V = float4; };
template <>
struct RowVec<float, 8> { using V = float4; };  // two loads, see LoadRow

template <typename T, int kElems>
__device__ __forceinline__ void LoadRow(const T* src, float* dst) {
  if constexpr (sizeof(T) * kElems <= 16) {
    using V = typename RowVec<T, kElems>::V;
    V v = *reinterpret_cast<const V*>(src);
    const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int i = 0; i < kElems; ++i) dst[i] = ToFloat(e[i]);
  } else {
    LoadRow<T, kElems / 2>(src, dst);
    LoadRow<T, kElems / 2>(src + kElems / 2, dst + kElems / 2);
  }
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    paged_decode_attention_kernel(const T* q /* [num_seqs, q_stride]: heads at h * hd */,
                                  const T* k_cache /* [num_blocks, bs, nkv, hd] */, const T* v_cache,
                                  const int32_t* block_tables /* [num_seqs, max_blocks_per_seq] */,
                                  const int32_t* seq_lens /* [num_seqs] */, T* out /* [num_seqs, nh * hd] */,
                                  float* part_out /* [num_seqs, nh, num_splits, hd] */,
                                  float* part_max /* [num_seqs, nh, num_splits] */, float* part_sum,
                                  AttentionShape shape, int split_tokens) {
  constexpr int kElems = kHeadDim / 32;  // per lane, consecutive
  const int kv_head = blockIdx.x, seq = blockIdx.y, split = blockIdx.z, num_splits = gridDim.z;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int seq_len = seq_lens[seq];
  const int begin = split * split_tokens;
  const int end = min(seq_len, begin + split_tokens);
  const float scale = rsqrtf(static_cast<float>(kHeadDim));

  float qv[kMaxGroup][kElems];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
      LoadRow<T, kElems>(q + static_cast<size_t>(seq) * shape.q_stride + (kv_head * group + g) * kHeadDim +
                             lane * kElems, qv[g]);
#pragma unroll
      for (int e = 0; e < kElems; ++e) qv[g][e] *= scale;
    }
  }
  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kElems];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -FLT_MAX;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < kElems; ++e) acc[g][e] = 0.f;
  }
  const int32_t* table = block_tables + static_cast<size_t>(seq) * shape.max_blocks_per_seq;
  const size_t token_stride = static_cast<size_t>(shape.num_kv_heads) * kHeadDim;

  for (int base = begin + warp * kUnroll; base < end; base += kDecodeWarps * kUnroll) {
    float k[kUnroll][kElems], v[kUnroll][kElems];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int tok = base + u;
      if (tok < end) {
        const size_t slot = static_cast<size_t>(table[tok / shape.block_size]) * shape.block_size + tok % shape.block_size;
        const size_t off = slot * token_stride + kv_head * kHeadDim + lane * kElems;
        LoadRow<T, kElems>(k_cache + off, k[u]);
        LoadRow<T, kElems>(v_cache + off, v[u]);
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      float s[kUnroll];
      float chunk_max = -FLT_MAX;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < kElems; ++e) dot += qv[g][e] * k[u][e];
        dot = WarpSum(dot);
        s[u] = base + u < end ? dot : -FLT_MAX;
        chunk_max = fmaxf(chunk_max, s[u]);
      }
      const float new_m = fmaxf(m[g], chunk_max);
      const float alpha = __expf(m[g] - new_m);
      l[g] *= alpha;
#pragma unroll
      for (int e = 0; e < kElems; ++e) acc[g][e] *= alpha;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float p = base + u < end ? __expf(s[u] - new_m) : 0.f;
        l[g] += p;
#pragma unroll
        for (int e = 0; e < kElems; ++e) acc[g][e] += p * v[u][e];
      }
      m[g] = new_m;
    }
  }

  // Merge the warps: each publishes (m, l, acc) per group head; warp 0's lanes combine.
  __shared__ float sh_m[kDecodeWarps][kMaxGroup], sh_l[kDecodeWarps][kMaxGroup];
  __shared__ float sh_acc[kDecodeWarps][kMaxGroup][kHeadDim];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= group) break;
    if (lane == 0) {
      sh_m[warp][g] = m[g];
      sh_l[warp][g] = l[g];
    }
#pragma unroll
    for (int e = 0; e < kElems; ++e) sh_acc[warp][g][lane * kElems + e] = acc[g][e];
  }
  __syncthreads();
  // Threads split the (group head, dim) outputs.
  for (int idx = threadIdx.x; idx < group * kHeadDim; idx += blockDim.x) {
    const int g = idx / kHeadDim, d = idx % kHeadDim;
    float gm = -FLT_MAX;
    for (int w = 0; w < kDecodeWarps; ++w) gm = fmaxf(gm, sh_m[w][g]);
    float gl = 0.f, go = 0.f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float f = __expf(sh_m[w][g] - gm);
      gl += sh_l[w][g] * f;
      go += sh_acc[w][g][d] * f;
    }
    const int head = kv_head * group + g;
    if (num_splits == 1) {
      out[static_cast<size_t>(seq) * shape.num_heads * kHeadDim + head * kHeadDim + d] =
          FromFloat<T>(gl > 0.f ? go / gl : 0.f);
    } else {
      const size_t p = (static_cast<size_t>(seq) * shape.num_heads + head) * num_splits + split;
      part_out[p * kHeadDim + d] = go;
      if (d == 0) {
        part_max[p] = gm;
        part_sum[p] = gl;
      }
    }
  }
}

template <typename T>
__global__ void decode_split_reduce_kernel(const float* part_out /* [num_seqs, nh, num_splits, hd] */,
                                           const float* part_max /* [num_seqs, nh, num_splits] */,
                                           const float* part_sum, T* out /* [num_seqs, nh * hd] */, int num_heads,
                                           int num_splits, int head_dim) {
  const int seq = blockIdx.y, head = blockIdx.x;
  const size_t p0 = (static_cast<size_t>(seq) * num_heads + head) * num_splits;
  float gm = -FLT_MAX;
  for (int s = 0; s < num_splits; ++s) gm = fmaxf(gm, part_max[p0 + s]);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float gl = 0.f, go = 0.f;
    for (int s = 0; s < num_splits; ++s) {
      const float f = __expf(part_max[p0 + s] - gm);
      gl += part_sum[p0 + s] * f;
      go += part_out[(p0 + s) * head_dim + d] * f;
    }
    out[static_cast<size_t>(seq) * num_heads * head_dim + head * head_dim + d] = FromFloat<T>(gl > 0.f ? go / gl : 0.f);
  }
}

bool DecodeAttentionSupported(int head_dim, int group_size) {
  return (head_dim == 64 || head_dim == 128 || head_dim == 256) && group_size >= 1 && group_size <= kMaxGroup;
}

size_t DecodeAttentionWorkspaceBytes(int num_seqs, int num_heads, int head_dim, int num_splits) {
  const size_t parts = static_cast<size_t>(num_seqs) * num_heads * num_splits;
  return parts * (head_dim + 2) * sizeof(float);
}

template <typename T>
void PagedDecodeAttention(const T* q, const T* k_cache, const T* v_cache, const int32_t* block_tables,
                          const int32_t* seq_lens, T* out, float* workspace, const AttentionShape& shape,
                          int num_splits, int split_tokens, cudaStream_t stream) {
  if (shape.num_seqs == 0) return;
  const int group = shape.num_heads / shape.num_kv_heads;
  if (!DecodeAttentionSupported(shape.head_dim, group)) throw std::runtime_error("PagedDecodeAttention: unsupported shape");
  const size_t parts = static_cast<size_t>(shape.num_seqs) * shape.num_heads * num_splits;
  float* part_out = workspace;
  float* part_max = workspace + parts * shape.head_dim;
  float* part_sum = part_max + parts;
  dim3 grid(shape.num_kv_heads, shape.num_seqs, num_splits);
  const int threads = kDecodeWarps * 32;
  switch (shape.head_dim) {
    case 64:
      paged_decode_attention_kernel<T, 64><<<grid, threads, 0, stream>>>(q, k_cache, v_cache, block_tables, seq_lens,
                                                                         out, part_out, part_max, part_sum, shape,
                                                                         split_tokens);
      break;
    case 128:
      paged_decode_attention_kernel<T, 128><<<grid, threads, 0, stream>>>(q, k_cache, v_cache, block_tables, seq_lens,
                                                                          out, part_out, part_max, part_sum, shape,
                                                                          split_tokens);
      break;
    default:
      paged_decode_attention_kernel<T, 256><<<grid, threads, 0, stream>>>(q, k_cache, v_cache, block_tables, seq_lens,
                                                                          out, part_out, part_max, part_sum, shape,
                                                                          split_tokens);
  }
  CUDA_CHECK_LAUNCH("paged_decode_attention_kernel");
  if (num_splits > 1) {
    decode_split_reduce_kernel<T><<<dim3(shape.num_heads, shape.num_seqs), 128, 0, stream>>>(
        part_out, part_max, part_sum, out, shape.num_heads, num_splits, shape.head_dim);
    CUDA_CHECK_LAUNCH("decode_split_reduce_kernel");
  }
}

template void PagedDecodeAttention<float>(const float*, const float*, const float*, const int32_t*, const int32_t*,
                                          float*, float*, const AttentionShape&, int, int, cudaStream_t);
template void PagedDecodeAttention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                  const int32_t*, const int32_t*, __nv_bfloat16*, float*,
                                                  const AttentionShape&, int, int, cudaStream_t);

}  // namespace spindle::cuda
