// Benchmark of prefill attention (native/src/cuda/prefill_attention*.cu): one 4096-token
// prompt and 8 prompts of 512, bf16, Llama-3-8B heads (32 q, 8 kv, head_dim 128), block size
// 16; the float32 CUDA-core kernel on the 4096 prompt for comparison. FLOPs counted as
// causal: 2 (QK and PV) x 2 x sum over queries of visible keys x heads x head_dim.
// Median of 20 launches after 3 warm-ups (CUDA events). Prints one JSON object.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "kernels.h"

using namespace spindle::cuda;

namespace {

template <typename T>
__global__ void fill_kernel(T* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    p[i] = T(float(h & 0xffff) / 32768.f - 1.f);
  }
}

template <typename T>
std::string RunCase(const char* name, int num_seqs, int len) {
  const int nh = 32, nkv = 8, hd = 128, bs = 16;
  const int nt = num_seqs * len, blocks_per_seq = (len + bs - 1) / bs;
  std::vector<int32_t> tables(size_t(num_seqs) * blocks_per_seq), qsl(num_seqs + 1), lens(num_seqs, len), pos(nt);
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = int32_t((i * 7919) % tables.size());  // scattered blocks
  for (int s = 0; s <= num_seqs; ++s) qsl[s] = s * len;
  for (int t = 0; t < nt; ++t) pos[t] = t % len;
  const int q_stride = (nh + 2 * nkv) * hd;
  const size_t cache = tables.size() * bs * nkv * hd;
  T *q, *k, *v, *out;
  int32_t *d_tables, *d_qsl, *d_lens, *d_pos;
  CUDA_CHECK(cudaMalloc(&q, size_t(nt) * q_stride * sizeof(T)));
  CUDA_CHECK(cudaMalloc(&k, cache * sizeof(T)));
  CUDA_CHECK(cudaMalloc(&v, cache * sizeof(T)));
  CUDA_CHECK(cudaMalloc(&out, size_t(nt) * nh * hd * sizeof(T)));
  fill_kernel<<<1024, 256>>>(q, size_t(nt) * q_stride, 1);
  fill_kernel<<<1024, 256>>>(k, cache, 2);
  fill_kernel<<<1024, 256>>>(v, cache, 3);
  CUDA_CHECK_LAUNCH("fill_kernel");
  auto upload = [](const std::vector<int32_t>& h, int32_t** d) {
    CUDA_CHECK(cudaMalloc(d, h.size() * 4));
    CUDA_CHECK(cudaMemcpy(*d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
  };
  upload(tables, &d_tables);
  upload(qsl, &d_qsl);
  upload(lens, &d_lens);
  upload(pos, &d_pos);
  const AttentionShape shape{num_seqs, nt, nh, nkv, hd, bs, blocks_per_seq, q_stride};
  auto launch = [&] { PrefillAttention<T>(q, k, v, d_tables, d_lens, d_qsl, d_pos, out, shape, len, 0); };
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) launch();
  std::vector<float> ms(20);
  for (float& m : ms) {
    CUDA_CHECK(cudaEventRecord(a));
    launch();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    CUDA_CHECK(cudaEventElapsedTime(&m, a, b));
  }
  std::sort(ms.begin(), ms.end());
  const double visible = double(num_seqs) * len * (len + 1) / 2.0;
  const double flops = 4.0 * visible * nh * hd;
  cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(out);
  cudaFree(d_tables); cudaFree(d_qsl); cudaFree(d_lens); cudaFree(d_pos);
  char buf[256];
  std::snprintf(buf, sizeof buf, "{\"name\":\"%s\",\"dtype\":\"%s\",\"numSeqs\":%d,\"len\":%d,\"medianMs\":%.4f,\"tflops\":%.1f}", name,
                sizeof(T) == 2 ? "bfloat16" : "float32", num_seqs, len, ms[10], flops / (ms[10] * 1e-3) / 1e12);
  return buf;
}

}  // namespace

int main() {
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("{\"gpu\":\"%s\",\"shape\":{\"numHeads\":32,\"numKvHeads\":8,\"headDim\":128},\"cases\":[%s,%s,%s]}\n", prop.name,
                RunCase<__nv_bfloat16>("prompt4096-wmma", 1, 4096).c_str(), RunCase<__nv_bfloat16>("8x512-wmma", 8, 512).c_str(),
                RunCase<float>("prompt4096-cudacore-f32", 1, 4096).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prefill_attention: %s\n", e.what());
    return 1;
  }
  return 0;
}
