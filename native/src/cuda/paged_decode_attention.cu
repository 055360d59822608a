// Decode attention over the paged KV cache: one query token per sequence.
// Grid (kv head, sequence, split). Each block reads its KV head's blocks once and scores them
// against every query head of the GQA group (queries staged in shared memory, pre-scaled).
// Within a warp, kLanes = head_dim / kElems lanes share one token (each lane kElems
// elements, in 16-byte chunks), so a warp works on 32 / kLanes tokens at once and a score
// needs only log2(kLanes) shuffles. Every token slot keeps its own online fp32 softmax
// (max, sum, output; in log2 units); slots, then warps, merge at the end. bf16 K/V (head_dim <= 128, groups <= 4) come through a cp.async
// pipeline in shared memory; other shapes load straight into registers. With more than one split,
// (max, sum, unnormalised output) partials go to `workspace` and a reduce kernel merges.
// Version history and timings: NOTES.md.
#include <cfloat>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

// Warps per block and pipeline depth are macros only so that the
// device script can build variants side by side for the benchmark (NOTES.md).
#ifndef SPINDLE_DECODE_WARPS
#define SPINDLE_DECODE_WARPS 4
#endif
constexpr int kDecodeWarps = SPINDLE_DECODE_WARPS;
// > 1: K/V staged through shared memory by a cp.async pipeline this deep (bf16, head_dim <= 128,
// groups <= 4; NOTES.md has each depth's time).
#ifndef SPINDLE_DECODE_STAGES
#define SPINDLE_DECODE_STAGES 2
#endif
constexpr int kPipelineStages = SPINDLE_DECODE_STAGES;

template <typename T>
struct ChunkVec;  // one 16-byte load of T
template <>
struct ChunkVec<__nv_bfloat16> { using V = uint4; };
template <>
struct ChunkVec<float> { using V = float4; };

// `raw` by value: one 16-byte load from shared memory (through a reference, nvcc reads the
// elements one by one: 8 two-byte loads, seen in the PTX; v5 at d096c2e ran at 51%).
template <typename T>
__device__ __forceinline__ void ChunkToFloats(const typename ChunkVec<T>::V raw, float (&dst)[16 / sizeof(T)]);
template <>
__device__ __forceinline__ void ChunkToFloats<float>(const float4 raw, float (&dst)[4]) {
  dst[0] = raw.x; dst[1] = raw.y; dst[2] = raw.z; dst[3] = raw.w;
}
// A bf16 is the top half of a float: one shift or mask per element.
template <>
__device__ __forceinline__ void ChunkToFloats<__nv_bfloat16>(const uint4 raw, float (&dst)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    dst[2 * i] = __uint_as_float(w[i] << 16);
    dst[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// 16-byte global -> shared copy that bypasses registers; src_size 0 zero-fills (tail tokens).
__device__ __forceinline__ void CpAsync16(void* smem_dst, const void* gmem_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(valid ? 16 : 0));
}

constexpr float kLog2e = 1.4426950408889634f;

// Pieces of a sequence of `len` tokens under split_tokens 0: as many as the launch has
// (num_splits), but none under kDecodeMinPieceTokens; at least one (a length-0 padding row
// gets its zeros from piece 0).
__device__ __forceinline__ int DecodePieces(int len, int num_splits) {
  return max(1, min(num_splits, (len + kDecodeMinPieceTokens - 1) / kDecodeMinPieceTokens));
}

// The kernel for GQA groups of up to 4 heads (Llama 3, Qwen, Mistral): elements of a row per
// lane (16: 8 lanes a token, 4 tokens a warp step; 8: 16 lanes, 2 tokens), and the blocks per
// SM asked of the register allocator (the accumulator is 4 x elements floats a lane).
#ifndef SPINDLE_DECODE_GROUP4_ELEMS
#define SPINDLE_DECODE_GROUP4_ELEMS 16
#endif
#ifndef SPINDLE_DECODE_MIN_BLOCKS
#define SPINDLE_DECODE_MIN_BLOCKS 4
#endif
constexpr int kGroup4Elems = SPINDLE_DECODE_GROUP4_ELEMS;
constexpr int kGroup4MinBlocks = SPINDLE_DECODE_MIN_BLOCKS;

// kMinBlocks: 4 keeps 16 warps per SM (<= 128 registers; without it nvcc takes up to 140 and
// 3 blocks fit: 69% of copy bandwidth instead of 78%, NOTES.md).
template <typename T, int kHeadDim, int kMaxGroup, int kElems, int kStages, int kMinBlocks>
__global__ void __launch_bounds__(kDecodeWarps * 32, kMinBlocks)
    paged_decode_attention_kernel(const T* q /* [num_seqs, q_stride]: heads at h * hd */,
                                  const T* k_cache /* [num_blocks, bs, nkv, hd] */, const T* v_cache,
                                  const int32_t* block_tables /* [num_seqs, max_blocks_per_seq] */,
                                  const int32_t* seq_lens /* [num_seqs] */, T* out /* [num_seqs, nh * hd] */,
                                  float* part_out /* [num_seqs, nh, num_splits, hd] */,
                                  float* part_max /* [num_seqs, nh, num_splits], log2 units */, float* part_sum,
                                  AttentionShape shape, int split_tokens) {
  using Vec = typename ChunkVec<T>::V;
  constexpr int kChunk = 16 / sizeof(T);            // elements per 16-byte load
  constexpr int kChunks = kElems / kChunk;          // loads per row per lane
  constexpr int kLanes = kHeadDim / kElems;         // lanes per token
  constexpr int kSlots = 32 / kLanes;               // tokens per warp step
  static_assert(kElems % kChunk == 0 && kLanes <= 32, "bad decode attention tiling");
  __shared__ __align__(16) float sq[kMaxGroup * kHeadDim];  // the group's queries, pre-scaled
  __shared__ float sh_m[kDecodeWarps][kMaxGroup], sh_l[kDecodeWarps][kMaxGroup];
  __shared__ float sh_acc[kDecodeWarps][kMaxGroup][kHeadDim];

  const int kv_head = blockIdx.x, seq = blockIdx.y, split = blockIdx.z, num_splits = gridDim.z;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int slot = lane / kLanes, sub = lane % kLanes;
  const int seq_len = seq_lens[seq];
  // split_tokens 0: each sequence cut into DecodePieces even pieces of its own length (whole
  // 16-token steps), so one launch shape serves any context length (CUDA graphs); the blocks
  // past a sequence's pieces have nothing to do.
  const int pieces = split_tokens > 0 ? num_splits : DecodePieces(seq_len, num_splits);
  if (split >= pieces) return;
  const bool write_out = num_splits == 1 || (split_tokens == 0 && pieces == 1);  // no partials to reduce
  const int span = split_tokens > 0 ? split_tokens : ((seq_len + pieces - 1) / pieces + 15) / 16 * 16;
  const int begin = split * span;
  const int end = min(seq_len, begin + span);
  // Scores in log2 units (exp2f below is one instruction; __expf would multiply by log2(e)).
  const float scale = rsqrtf(static_cast<float>(kHeadDim)) * kLog2e;

  // The group's queries into shared memory (the pipelined path first puts its first K/V
  // loads in flight, so that the two latencies overlap).
  auto load_queries = [&] {
    const T* q_group = q + static_cast<size_t>(seq) * shape.q_stride + kv_head * group * kHeadDim;
    for (int i = threadIdx.x; i < group * kHeadDim; i += blockDim.x) sq[i] = ToFloat(q_group[i]) * scale;
    __syncthreads();
  };

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

  // One token's contribution to every query head of the group (per-slot online softmax, in
  // log2 units), head by head. (Skipping the rescale while no maximum grows, behind a
  // warp-uniform branch, measured no faster: NOTES.md.)
  auto consume = [&](const float (&k)[kElems], const float (&v)[kElems], bool valid) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      float dot = 0.f;
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        // 16-byte loads of the query (sq is 16-byte aligned, kChunk a multiple of 4).
        const float4* qc = reinterpret_cast<const float4*>(sq + g * kHeadDim + (c * kLanes + sub) * kChunk);
#pragma unroll
        for (int j = 0; j < kChunk / 4; ++j) {
          const float4 q4 = qc[j];
          const float* kc = k + c * kChunk + 4 * j;
          dot += q4.x * kc[0];
          dot += q4.y * kc[1];
          dot += q4.z * kc[2];
          dot += q4.w * kc[3];
        }
      }
#pragma unroll
      for (int o = kLanes / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      const float s = valid ? dot : -FLT_MAX;
      const float new_m = fmaxf(m[g], s);
      const float alpha = exp2f(m[g] - new_m);
      l[g] *= alpha;
#pragma unroll
      for (int e = 0; e < kElems; ++e) acc[g][e] *= alpha;
      m[g] = new_m;
      const float p = valid ? exp2f(s - m[g]) : 0.f;
      l[g] += p;
#pragma unroll
      for (int e = 0; e < kElems; ++e) acc[g][e] += p * v[e];
    }
  };
  // Offset of token `tok`'s row for this KV head, `block` its KV-cache block.
  auto row_in = [&](int32_t block, int tok) {
    return (static_cast<size_t>(block) * shape.block_size + tok % shape.block_size) * token_stride + kv_head * kHeadDim;
  };

  if constexpr (kStages == 1) {
    load_queries();
    // Loads straight into registers (v2; NOTES.md).
    // The loop bound is uniform across the warp (shuffles below); `valid` masks the tail.
    for (int base = begin + warp * kSlots; base < end; base += kDecodeWarps * kSlots) {
      const int tok = base + slot;
      const bool valid = tok < end;
      float k[kElems], v[kElems];
      if (valid) {
        const size_t row = row_in(table[tok / shape.block_size], tok);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int d0 = (c * kLanes + sub) * kChunk;
          ChunkToFloats<T>(*reinterpret_cast<const Vec*>(k_cache + row + d0), *reinterpret_cast<float(*)[kChunk]>(k + c * kChunk));
          ChunkToFloats<T>(*reinterpret_cast<const Vec*>(v_cache + row + d0), *reinterpret_cast<float(*)[kChunk]>(v + c * kChunk));
        }
      } else {
#pragma unroll
        for (int e = 0; e < kElems; ++e) k[e] = v[e] = 0.f;
      }
      consume(k, v, valid);
    }
  } else {
    // cp.async pipeline, kStages deep: each lane stages its own 16-byte chunks of K and V in
    // shared memory (chunk-major, so a warp's accesses are contiguous) and reads back only
    // what it copied, so no barrier is needed; loads stay in flight without registers.
    __shared__ __align__(16) Vec stage_buf[kDecodeWarps][kStages][2][kChunks][32];
    const int stride = kDecodeWarps * kSlots;
    const int first = begin + warp * kSlots;
    const int num_steps = first < end ? (end - first + stride - 1) / stride : 0;
    // The KV-cache block of this lane's token at `step` (0 past the end). Read one step before
    // its issue(), so that the table's latency is not paid in front of every cp.async.
    auto block_of = [&](int step) {
      const int tok = first + step * stride + slot;
      return step < num_steps && tok < end ? table[tok / shape.block_size] : 0;
    };
    auto issue = [&](int step, int32_t block) {
      const int tok = first + step * stride + slot;
      const bool valid = step < num_steps && tok < end;
      const size_t row = valid ? row_in(block, tok) : 0;
      const int st = step % kStages;
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int d0 = (c * kLanes + sub) * kChunk;
        CpAsync16(&stage_buf[warp][st][0][c][lane], k_cache + row + d0, valid);
        CpAsync16(&stage_buf[warp][st][1][c][lane], v_cache + row + d0, valid);
      }
      asm volatile("cp.async.commit_group;\n" ::);
    };
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) issue(st, block_of(st));
    load_queries();
    int32_t next_block = block_of(kStages - 1);
    for (int step = 0; step < num_steps; ++step) {
      const int32_t block = next_block;
      next_block = block_of(step + kStages);
      issue(step + kStages - 1, block);
      asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 1));
      const int st = step % kStages;
      float k[kElems], v[kElems];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        ChunkToFloats<T>(stage_buf[warp][st][0][c][lane], *reinterpret_cast<float(*)[kChunk]>(k + c * kChunk));
        ChunkToFloats<T>(stage_buf[warp][st][1][c][lane], *reinterpret_cast<float(*)[kChunk]>(v + c * kChunk));
      }
      consume(k, v, first + step * stride + slot < end);
    }
    asm volatile("cp.async.wait_all;\n" ::);
  }

  // Merge the token slots of the warp (lanes with equal `sub`), then the warps.
#pragma unroll
  for (int off = kLanes; off < 32; off <<= 1) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      const float m_o = __shfl_xor_sync(0xffffffffu, m[g], off);
      const float l_o = __shfl_xor_sync(0xffffffffu, l[g], off);
      const float new_m = fmaxf(m[g], m_o);
      const float a = exp2f(m[g] - new_m), b = exp2f(m_o - new_m);
      l[g] = l[g] * a + l_o * b;
#pragma unroll
      for (int e = 0; e < kElems; ++e) acc[g][e] = acc[g][e] * a + __shfl_xor_sync(0xffffffffu, acc[g][e], off) * b;
      m[g] = new_m;
    }
  }
  if (slot == 0) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      if (sub == 0) {
        sh_m[warp][g] = m[g];
        sh_l[warp][g] = l[g];
      }
#pragma unroll
      for (int c = 0; c < kChunks; ++c)
#pragma unroll
        for (int j = 0; j < kChunk; ++j) sh_acc[warp][g][(c * kLanes + sub) * kChunk + j] = acc[g][c * kChunk + j];
    }
  }
  __syncthreads();
  // Threads split the (group head, dim) outputs.
  for (int idx = threadIdx.x; idx < group * kHeadDim; idx += blockDim.x) {
    const int g = idx / kHeadDim, d = idx % kHeadDim;
    float gm = -FLT_MAX;
    for (int w = 0; w < kDecodeWarps; ++w) gm = fmaxf(gm, sh_m[w][g]);
    float gl = 0.f, go = 0.f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float f = exp2f(sh_m[w][g] - gm);
      gl += sh_l[w][g] * f;
      go += sh_acc[w][g][d] * f;
    }
    const int head = kv_head * group + g;
    if (write_out) {
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
                                           const float* part_sum, const int32_t* seq_lens, T* out /* [num_seqs, nh * hd] */,
                                           int num_heads, int num_splits, int head_dim, bool per_seq) {
  const int seq = blockIdx.y, head = blockIdx.x;
  const int pieces = per_seq ? DecodePieces(seq_lens[seq], num_splits) : num_splits;
  if (per_seq && pieces == 1) return;  // the attention kernel wrote this sequence's output
  const size_t p0 = (static_cast<size_t>(seq) * num_heads + head) * num_splits;
  float gm = -FLT_MAX;
  for (int s = 0; s < pieces; ++s) gm = fmaxf(gm, part_max[p0 + s]);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float gl = 0.f, go = 0.f;
    for (int s = 0; s < pieces; ++s) {
      const float f = exp2f(part_max[p0 + s] - gm);  // the partial maxima are in log2 units
      gl += part_sum[p0 + s] * f;
      go += part_out[(p0 + s) * head_dim + d] * f;
    }
    out[static_cast<size_t>(seq) * num_heads * head_dim + head * head_dim + d] = FromFloat<T>(gl > 0.f ? go / gl : 0.f);
  }
}

bool DecodeAttentionSupported(int head_dim, int group_size) {
  return (head_dim == 64 || head_dim == 128 || head_dim == 256) && group_size >= 1 && group_size <= 8;
}

size_t DecodeAttentionWorkspaceBytes(int num_seqs, int num_heads, int head_dim, int num_splits) {
  const size_t parts = static_cast<size_t>(num_seqs) * num_heads * num_splits;
  return parts * (head_dim + 2) * sizeof(float);
}

namespace {

// Groups of up to 4 heads: kGroup4Elems elements per lane; up to 8: 8 per lane (registers:
// the accumulator is group x elements floats per lane).
template <typename T, int kHeadDim>
void LaunchDecode(dim3 grid, int group, cudaStream_t stream, const T* q, const T* k_cache, const T* v_cache,
                  const int32_t* block_tables, const int32_t* seq_lens, T* out, float* part_out, float* part_max,
                  float* part_sum, const AttentionShape& shape, int split_tokens) {
  const int threads = kDecodeWarps * 32;
  if (group <= 4) {
    constexpr int stages = (sizeof(T) == 2 && kHeadDim <= 128) ? kPipelineStages : 1;  // static smem <= 48 KB
    paged_decode_attention_kernel<T, kHeadDim, 4, kGroup4Elems, stages, kGroup4MinBlocks><<<grid, threads, 0, stream>>>(
        q, k_cache, v_cache, block_tables, seq_lens, out, part_out, part_max, part_sum, shape, split_tokens);
  } else {
    paged_decode_attention_kernel<T, kHeadDim, 8, 8, 1, 4><<<grid, threads, 0, stream>>>(
        q, k_cache, v_cache, block_tables, seq_lens, out, part_out, part_max, part_sum, shape, split_tokens);
  }
}

}  // namespace

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
  if (shape.head_dim == 64) {
    LaunchDecode<T, 64>(grid, group, stream, q, k_cache, v_cache, block_tables, seq_lens, out, part_out, part_max,
                        part_sum, shape, split_tokens);
  } else if (shape.head_dim == 128) {
    LaunchDecode<T, 128>(grid, group, stream, q, k_cache, v_cache, block_tables, seq_lens, out, part_out, part_max,
                         part_sum, shape, split_tokens);
  } else {
    LaunchDecode<T, 256>(grid, group, stream, q, k_cache, v_cache, block_tables, seq_lens, out, part_out, part_max,
                         part_sum, shape, split_tokens);
  }
  CUDA_CHECK_LAUNCH("paged_decode_attention_kernel");
  if (num_splits > 1) {
    decode_split_reduce_kernel<T><<<dim3(shape.num_heads, shape.num_seqs), 128, 0, stream>>>(
        part_out, part_max, part_sum, seq_lens, out, shape.num_heads, num_splits, shape.head_dim, split_tokens == 0);
    CUDA_CHECK_LAUNCH("decode_split_reduce_kernel");
  }
}

template void PagedDecodeAttention<float>(const float*, const float*, const float*, const int32_t*, const int32_t*,
                                          float*, float*, const AttentionShape&, int, int, cudaStream_t);
template void PagedDecodeAttention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                  const int32_t*, const int32_t*, __nv_bfloat16*, float*,
                                                  const AttentionShape&, int, int, cudaStream_t);

}  // namespace spindle::cuda
