// Benchmark of the paged decode attention kernel (native/src/cuda/paged_decode_attention.cu).
// Case "batch": 256 sequences with contexts uniform in [1024, 4096], bf16, Llama-3-8B heads
// (32 q heads, 8 kv heads, head_dim 128), block size 16, shuffled block tables, unsplit and
// with each context cut into 2, 3, 4, 6 and 8 pieces of its own length (split_tokens 0, as the
// backend launches it). Case "long-few": 4 sequences of 32k tokens, with and without
// splitting; 256 sequences of 64-512 tokens. "-sorted": longest context first. "-engine":
// as the backend runs it, rows longest first (the scheduler's order) and the pieces
// step_plan.h's DecodeSplits picks.
// Minimum bytes = every K and V row of every context read once + q read + out written +
// block tables; the copy ceiling = a 2 GiB device-to-device cudaMemcpy (read + write bytes).
// Times: median of 50 launches (CUDA events) after 5 warm-up launches.
// Prints one JSON object (the results file's body). Usage: decode_attention [seed]
#include <cuda_bf16.h>

#include <algorithm>
#include <functional>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "kernels.h"
#include "step_plan.h"

using namespace spindle::cuda;

namespace {

constexpr int kWarmup = 5, kReps = 50;

template <typename Fn>
float MedianMs(Fn&& launch) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < kWarmup; ++i) launch();
  std::vector<float> ms(kReps);
  for (int i = 0; i < kReps; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    launch();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    CUDA_CHECK(cudaEventElapsedTime(&ms[i], a, b));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[kReps / 2];
}

__global__ void fill_random_kernel(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    p[i] = __float2bfloat16(float(h & 0xffff) / 32768.f - 1.f);  // [-1, 1): never zeros everywhere
  }
}

struct CaseResult {
  std::string name;
  int num_seqs, num_splits;
  double ms, min_bytes, bandwidth_gbps, fraction_of_copy;
};

// per_seq: each context cut into num_splits pieces of its own length (split_tokens 0, the
// backend's launch); else pieces of ceil(longest / num_splits) tokens.
CaseResult RunCase(const std::string& name, const std::vector<int>& lens, int num_splits, bool per_seq, double copy_gbps,
                   uint32_t seed) {
  const int nh = 32, nkv = 8, hd = 128, bs = 16;
  const int ns = int(lens.size());
  int max_blocks = 0, total_blocks = 0, max_len = 0;
  for (int l : lens) {
    max_blocks = std::max(max_blocks, (l + bs - 1) / bs);
    total_blocks += (l + bs - 1) / bs;
    max_len = std::max(max_len, l);
  }
  std::vector<int32_t> perm(total_blocks);
  for (int i = 0; i < total_blocks; ++i) perm[i] = i;
  std::mt19937 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> tables(size_t(ns) * max_blocks, 0);
  int next = 0;
  for (int s = 0; s < ns; ++s)
    for (int b = 0; b < (lens[s] + bs - 1) / bs; ++b) tables[size_t(s) * max_blocks + b] = perm[next++];
  const size_t cache_elems = size_t(total_blocks) * bs * nkv * hd;
  const int q_stride = (nh + 2 * nkv) * hd;
  __nv_bfloat16 *k, *v, *q, *out;
  int32_t *d_tables, *d_lens;
  float* ws;
  CUDA_CHECK(cudaMalloc(&k, cache_elems * 2));
  CUDA_CHECK(cudaMalloc(&v, cache_elems * 2));
  CUDA_CHECK(cudaMalloc(&q, size_t(ns) * q_stride * 2));
  CUDA_CHECK(cudaMalloc(&out, size_t(ns) * nh * hd * 2));
  CUDA_CHECK(cudaMalloc(&d_tables, tables.size() * 4));
  CUDA_CHECK(cudaMalloc(&d_lens, ns * 4));
  CUDA_CHECK(cudaMalloc(&ws, DecodeAttentionWorkspaceBytes(ns, nh, hd, num_splits)));
  fill_random_kernel<<<1024, 256>>>(k, cache_elems, seed + 1);
  fill_random_kernel<<<1024, 256>>>(v, cache_elems, seed + 2);
  fill_random_kernel<<<1024, 256>>>(q, size_t(ns) * q_stride, seed + 3);
  CUDA_CHECK_LAUNCH("fill_random_kernel");
  CUDA_CHECK(cudaMemcpy(d_tables, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_lens, lens.data(), ns * 4, cudaMemcpyHostToDevice));
  const AttentionShape shape{ns, ns, nh, nkv, hd, bs, max_blocks, q_stride};
  const int split_tokens = per_seq ? 0 : ((max_len + num_splits - 1) / num_splits + 15) / 16 * 16;
  const float ms = MedianMs([&] {
    PagedDecodeAttention<__nv_bfloat16>(q, k, v, d_tables, d_lens, out, ws, shape, num_splits, split_tokens, 0);
  });
  CUDA_CHECK(cudaDeviceSynchronize());
  double kv_rows = 0, table_bytes = 0;
  for (int l : lens) {
    kv_rows += l;
    table_bytes += 4.0 * ((l + bs - 1) / bs);
  }
  const double min_bytes = kv_rows * nkv * hd * 2 * 2 + double(ns) * nh * hd * 2 * 2 + table_bytes + ns * 4;
  cudaFree(k); cudaFree(v); cudaFree(q); cudaFree(out); cudaFree(d_tables); cudaFree(d_lens); cudaFree(ws);
  const double gbps = min_bytes / (ms * 1e-3) / 1e9;
  return {name, ns, num_splits, ms, min_bytes, gbps, gbps / copy_gbps};
}

double CopyBandwidthGbps() {
  const size_t bytes = size_t(2) << 30;
  void *a, *b;
  CUDA_CHECK(cudaMalloc(&a, bytes));
  CUDA_CHECK(cudaMalloc(&b, bytes));
  fill_random_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(a), bytes / 2, 7);
  CUDA_CHECK_LAUNCH("fill_random_kernel");
  const float ms = MedianMs([&] { CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0)); });
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t seed = argc > 1 ? uint32_t(std::stoul(argv[1])) : 1;
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const double copy_gbps = CopyBandwidthGbps();
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> len(1024, 4096);
    std::vector<int> batch(256);
    for (int& l : batch) l = len(rng);
    std::vector<CaseResult> results;
    const int sms = prop.multiProcessorCount;
    for (int splits : {1, 2, 3, 4, 6, 8})
      results.push_back(RunCase(splits == 1 ? "batch256-1k4k" : "batch256-1k4k-split" + std::to_string(splits), batch,
                                splits, true, copy_gbps, seed));
    // The same batch with its longest contexts first: the GPU starts blocks in index order, so
    // the last wave holds the shortest ones (longest-processing-time-first scheduling).
    std::vector<int> sorted = batch;
    std::sort(sorted.begin(), sorted.end(), std::greater<int>());
    for (int splits : {1, 2, 3, 4})
      results.push_back(RunCase(splits == 1 ? "batch256-1k4k-sorted" : "batch256-1k4k-sorted-split" + std::to_string(splits),
                                sorted, splits, true, copy_gbps, seed));
    // As the backend runs it: rows longest first (the scheduler's order), DecodeSplits' pieces.
    results.push_back(RunCase("batch256-1k4k-engine", sorted, DecodeSplits(256, sorted.front(), 8, sms), true, copy_gbps, seed));
    // Short contexts (64-512): what the batch split costs where most sequences are one piece.
    std::uniform_int_distribution<int> short_len(64, 512);
    std::vector<int> short_batch(256);
    for (int& l : short_batch) l = short_len(rng);
    const int short_max = *std::max_element(short_batch.begin(), short_batch.end());
    results.push_back(RunCase("batch256-64to512", short_batch, 1, true, copy_gbps, seed));
    std::sort(short_batch.begin(), short_batch.end(), std::greater<int>());
    results.push_back(RunCase("batch256-64to512-engine", short_batch, DecodeSplits(256, short_max, 8, sms), true, copy_gbps, seed));
    std::vector<int> few(4, 32768);
    results.push_back(RunCase("long4-32k-nosplit", few, 1, false, copy_gbps, seed));
    results.push_back(RunCase("long4-32k-split16", few, 16, false, copy_gbps, seed));
    results.push_back(RunCase("long4-32k-engine", few, DecodeSplits(4, 32768, 8, sms), true, copy_gbps, seed));
    std::printf("{\"gpu\":\"%s\",\"copyBandwidthGBps\":%.1f,\"shape\":{\"numHeads\":32,\"numKvHeads\":8,\"headDim\":128,"
                "\"blockSize\":16,\"dtype\":\"bfloat16\"},\"timing\":\"median of %d after %d warm-up, CUDA events\",\"cases\":[",
                prop.name, copy_gbps, kReps, kWarmup);
    for (size_t i = 0; i < results.size(); ++i) {
      const CaseResult& r = results[i];
      std::printf("%s{\"name\":\"%s\",\"numSeqs\":%d,\"numSplits\":%d,\"medianMs\":%.4f,\"minBytes\":%.0f,"
                  "\"achievedGBps\":%.1f,\"fractionOfCopyBandwidth\":%.3f}",
                  i ? "," : "", r.name.c_str(), r.num_seqs, r.num_splits, r.ms, r.min_bytes, r.bandwidth_gbps,
                  r.fraction_of_copy);
    }
    std::printf("]}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_attention: %s\n", e.what());
    return 1;
  }
  return 0;
}
