// PLACEHOLDER, not the sampler: greedy argmax per sequence, its log-softmax, and the top
// num_logprobs[s] alternatives by repeated argmax. The real batched sampler (temperature,
// top-k/p, min-p, penalties, seeded draws) is sampler.h's SampleBatch; this stands in while
// it is not linked in (sample_step.cc), and ignores every sampling parameter.
#include <cfloat>

#include "cuda_check.h"
#include "dtype.cuh"
#include "kernels.h"

namespace spindle::cuda {

constexpr int kSampleThreads = 1024;

struct ArgMax {
  float value;
  int index;
};

__device__ __forceinline__ ArgMax Better(ArgMax a, ArgMax b) {
  // Ties go to the lower index, as torch.argmax does.
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ ArgMax BlockArgMax(ArgMax mine, ArgMax* scratch /* [32] */) {
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax other{__shfl_xor_sync(0xffffffffu, mine.value, o), __shfl_xor_sync(0xffffffffu, mine.index, o)};
    mine = Better(mine, other);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) scratch[warp] = mine;
  __syncthreads();
  ArgMax best = scratch[0];
  for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) best = Better(best, scratch[w]);
  return best;
}

__global__ void greedy_sample_placeholder_kernel(const float* logits /* [num_seqs, row_stride] */, int64_t row_stride,
                                                 const int32_t* is_sampled,
                                                 const int32_t* num_logprobs, int vocab, int max_top,
                                                 int32_t* sampled_ids /* [num_seqs] */,
                                                 float* sampled_logprobs /* [num_seqs] */,
                                                 int32_t* top_ids /* [num_seqs, max_top] */,
                                                 float* top_logprobs /* [num_seqs, max_top] */) {
  __shared__ ArgMax scratch[32];
  __shared__ float sum_scratch[32];
  const int s = blockIdx.x;
  const int want = is_sampled[s] ? min(num_logprobs[s], max_top) : 0;
  if (threadIdx.x < max_top) {
    top_ids[s * max_top + threadIdx.x] = -1;
    top_logprobs[s * max_top + threadIdx.x] = -INFINITY;
  }
  if (!is_sampled[s]) {
    if (threadIdx.x == 0) {
      sampled_ids[s] = -1;
      sampled_logprobs[s] = 0.f;
    }
    return;
  }
  const float* x = logits + s * row_stride;
  ArgMax mine{-FLT_MAX, 0x7fffffff};
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) mine = Better(mine, ArgMax{x[i], i});
  const ArgMax best = BlockArgMax(mine, scratch);
  float sum = 0.f;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf(x[i] - best.value);
  sum = WarpSum(sum);
  if ((threadIdx.x & 31) == 0) sum_scratch[threadIdx.x >> 5] = sum;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += sum_scratch[w];
  const float log_z = best.value + logf(total);
  if (threadIdx.x == 0) {
    sampled_ids[s] = best.index;
    sampled_logprobs[s] = best.value - log_z;
  }
  // Top alternatives: the k-th is the best among values ranked below the (k-1)-th.
  ArgMax prev = best;
  for (int k = 0; k < want; ++k) {
    if (k > 0) {
      ArgMax cand{-FLT_MAX, 0x7fffffff};
      for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const bool after_prev = x[i] < prev.value || (x[i] == prev.value && i > prev.index);
        if (after_prev) cand = Better(cand, ArgMax{x[i], i});
      }
      prev = BlockArgMax(cand, scratch);
    }
    if (threadIdx.x == 0) {
      top_ids[s * max_top + k] = prev.index;
      top_logprobs[s * max_top + k] = prev.value - log_z;
    }
  }
}

void GreedySamplePlaceholder(const float* logits, int64_t row_stride, const int32_t* is_sampled, const int32_t* num_logprobs, int num_seqs, int vocab,
                             int max_top_logprobs, int32_t* sampled_ids, float* sampled_logprobs, int32_t* top_ids,
                             float* top_logprobs, cudaStream_t stream) {
  if (num_seqs == 0) return;
  greedy_sample_placeholder_kernel<<<num_seqs, kSampleThreads, 0, stream>>>(
      logits, row_stride, is_sampled, num_logprobs, vocab, max_top_logprobs, sampled_ids,
      sampled_logprobs, top_ids, top_logprobs);
  CUDA_CHECK_LAUNCH("greedy_sample_placeholder_kernel");
}

}  // namespace spindle::cuda
