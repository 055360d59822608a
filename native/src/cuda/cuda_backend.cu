#include "cuda_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cublas_loader.h"
#include "cuda_check.h"
#include "device_buffer.h"
#include "gemm.h"
#include "gpu_weights.h"
#include "kernels.h"
#include "logit_adjust.h"
#include "phase_timer.h"
#include "profile_batch.h"
#include "rope_frequencies.h"
#include "sample_step.h"
#include "step_plan.h"

namespace spindle::cuda {
namespace {

constexpr size_t kCublasWorkspaceBytes = 32u << 20;
static_assert(kMinSplitTokens == kDecodeMinPieceTokens, "the plan's split and the kernel's pieces must agree");
// Slot of the step result's timing header where the number of D2H copies is reported
// (ResultTiming.deviceToHostCopies in src/engine/batch-layout.ts).
constexpr int kTimingD2hCopies = 4;
constexpr int kTimingGraphReplayed = 5;  // ResultTiming.cudaGraphReplayed

// The device columns one forward pass reads, and what the host worked out about them.
struct ForwardInputs {
  const int32_t *input_ids, *positions, *slot_mapping, *seq_lens, *block_tables, *query_start_loc;
  int num_tokens, num_seqs;
  int num_decodes;             // sequences [0, num_decodes) compute one token each: decode kernel
  int max_blocks_per_seq;      // row stride of block_tables
  int max_prefill_query_len;   // longest query among sequences [num_decodes, num_seqs)
  int num_splits;              // the decode kernel's context split (pieces per sequence)
};

// Owns one instantiated CUDA graph.
class GraphExec {
 public:
  GraphExec() = default;
  explicit GraphExec(cudaGraphExec_t exec) : exec_(exec) {}
  ~GraphExec() { if (exec_) cudaGraphExecDestroy(exec_); }
  GraphExec(GraphExec&& o) noexcept : exec_(std::exchange(o.exec_, nullptr)) {}
  GraphExec& operator=(GraphExec&& o) noexcept {
    if (this != &o) {
      if (exec_) cudaGraphExecDestroy(exec_);
      exec_ = std::exchange(o.exec_, nullptr);
    }
    return *this;
  }
  cudaGraphExec_t get() const { return exec_; }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

template <typename T>
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const ExecutorConfig& config) : config_(config), m_(config.model) {
    CUDA_CHECK(cudaSetDevice(0));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    device_name_ = prop.name;
    num_sms_ = prop.multiProcessorCount;
    const CublasApi& api = LoadCublas();
    CublasCheck(api.Create(&cublas_), "cublasCreate");
    CublasCheck(api.SetStream(cublas_, compute_.get()), "cublasSetStream");
    cublas_workspace_.Grow(kCublasWorkspaceBytes);
    CublasCheck(api.SetWorkspace(cublas_, cublas_workspace_.get(), kCublasWorkspaceBytes), "cublasSetWorkspace");

    weights_ = std::make_unique<GpuWeights<T>>(config, compute_.get());
    const std::vector<float> inv_freq = RopeInverseFrequencies(m_);
    inv_freq_.Grow(inv_freq.size() * sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(inv_freq_.get(), inv_freq.data(), inv_freq.size() * sizeof(float),
                               cudaMemcpyHostToDevice, compute_.get()));
    CUDA_CHECK(cudaStreamSynchronize(compute_.get()));

    max_tokens_ = std::max(config.max_num_batched_tokens, config.max_num_seqs);
    max_seqs_ = config.max_num_seqs;
    AllocateScratch();
    if (config.num_blocks > 0) {
      AllocateKvCache(config.num_blocks);
    } else {
      ProfileAndSizeKvCache();
    }
    PrepareDecodeGraphs();
  }

  ~CudaBackend() override {
    cudaDeviceSynchronize();
    graph_execs_.clear();
    if (cublas_) LoadCublas().Destroy(cublas_);
  }

  int32_t num_blocks() const override { return num_blocks_; }
  std::string device_name() const override { return device_name_; }

  void Step(const StepBatch& batch, void* out) override {
    const auto host_start = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaSetDevice(0));
    if (batch.num_tokens > max_tokens_) throw std::runtime_error("cuda step: more tokens than maxNumBatchedTokens");
    if (batch.num_seqs > max_seqs_) throw std::runtime_error("cuda step: more sequences than maxNumSeqs");
    const size_t result_bytes = StepResultByteLength(batch, m_.vocab_size);
    const uint64_t copies_before = num_d2h_copies_;
    if (batch.num_seqs == 0) {
      std::memset(out, 0, result_bytes);
      return;
    }
    // Staging: the packed batch as one block (header included), so one H2D copy carries it.
    const char* host_base = reinterpret_cast<const char*>(batch.input_ids) - kBatchHeaderInts * 4;
    pinned_batch_.Grow(batch.byte_length);
    device_batch_.Grow(batch.byte_length);
    const size_t slab_bytes = result_bytes;
    device_slab_.Grow(slab_bytes);
    PinnedBuffer& slot = pinned_slots_[step_index_ % 2];
    slot.Grow(slab_bytes);
    std::memcpy(pinned_batch_.get(), host_base, batch.byte_length);

    cudaStream_t stream = compute_.get();
    const ForwardInputs in = DescribeBatch(batch, host_base);
    bool use_graph = CanReplayDecodeGraph(batch, in);
    timer_.BeginStep(in.num_decodes == in.num_seqs ? "decode" : "mixed", stream, batch.num_tokens);
    CUDA_CHECK(cudaEventRecord(ev_start_.get(), stream));
    CUDA_CHECK(cudaMemcpyAsync(device_batch_.get(), pinned_batch_.get(), batch.byte_length, cudaMemcpyHostToDevice, stream));
    timer_.Mark("copy_batch_to_device", stream);
    auto dev = [&](const int32_t* host_column) { return OnDevice(host_column, host_base); };
    StepResult slab = LayStepResult(device_slab_.get(), batch);
    const float* logits = use_graph ? ReplayDecodeGraph(in) : nullptr;  // null: the capture failed
    if (!logits) {
      use_graph = false;
      logits = Forward(in, batch.logits_mode, slab.logits);
    }
    CUDA_CHECK(cudaEventRecord(ev_forward_.get(), stream));

    if (batch.num_logit_adjusts > 0) {
      // logit_bias and min_tokens bans on the sampled rows' logits (row s = sequence s). logitsMode 1
      // returns the raw logits in the slab, so the adjustments go on a copy in the scratch rows.
      float* adjusted = logits_scratch_.get<float>();  // [max_seqs, vocab]
      const size_t row_bytes = static_cast<size_t>(m_.vocab_size) * sizeof(float);
      if (logits != adjusted) CUDA_CHECK(cudaMemcpyAsync(adjusted, logits, batch.num_seqs * row_bytes, cudaMemcpyDeviceToDevice, stream));
      ApplyLogitAdjusts(adjusted, m_.vocab_size, dev(batch.is_sampled), dev(batch.logit_adjust_offsets),
                        dev(batch.logit_adjust_tokens), OnDevice(batch.logit_adjust_values, host_base), batch.num_seqs, stream);
      logits = adjusted;
      timer_.Mark("logit_adjust", stream);
    }
    SampleStep(SamplerArgsForBatch(batch, host_base, device_batch_.get(), logits, m_.vocab_size, m_.vocab_size, slab,
                                   sampler_workspace_.get(), sampler_workspace_.bytes()),
               stream);
    timer_.Mark("sample", stream);
    CUDA_CHECK(cudaEventRecord(ev_sampled_.get(), stream));

    // The one device-to-host copy, on its own stream once the compute stream is done.
    CUDA_CHECK(cudaStreamWaitEvent(copy_.get(), ev_sampled_.get(), 0));
    CUDA_CHECK(cudaMemcpyAsync(slot.get(), device_slab_.get(), slab_bytes, cudaMemcpyDeviceToHost, copy_.get()));
    ++num_d2h_copies_;
    CUDA_CHECK(cudaEventRecord(ev_copied_.get(), copy_.get()));
    CUDA_CHECK(cudaEventSynchronize(ev_copied_.get()));  // the step's one host synchronisation
    ++step_index_;
    timer_.Collect();

    std::memcpy(out, slot.get(), slab_bytes);
    float* timings = static_cast<float*>(out);
    std::fill(timings, timings + kResultHeaderFloats, 0.f);
    CUDA_CHECK(cudaEventElapsedTime(&timings[0], ev_start_.get(), ev_forward_.get()));
    CUDA_CHECK(cudaEventElapsedTime(&timings[1], ev_forward_.get(), ev_sampled_.get()));
    CUDA_CHECK(cudaEventElapsedTime(&timings[2], ev_sampled_.get(), ev_copied_.get()));
    timings[3] = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - host_start).count();
    timings[kTimingD2hCopies] = static_cast<float>(num_d2h_copies_ - copies_before);
    timings[kTimingGraphReplayed] = use_graph ? 1.f : 0.f;
  }

 private:
  // The device copy of a batch column: the same offset from the batch's start as on the host.
  template <typename Column>
  const Column* OnDevice(const Column* host_column, const char* host_base) const {
    return reinterpret_cast<const Column*>(device_batch_.get<char>() + (reinterpret_cast<const char*>(host_column) - host_base));
  }

  // The forward pass's view of a validated batch: device columns, and the leading run of
  // one-token sequences (the scheduler lists them first) that the decode kernel takes
  // (step_plan.h, checked on the CPU).
  ForwardInputs DescribeBatch(const StepBatch& b, const char* host_base) const {
    auto dev = [&](const int32_t* host_column) { return OnDevice(host_column, host_base); };
    const StepPlan plan = PlanStep(b, DecodeAttentionSupported(m_.head_dim, m_.num_heads / m_.num_kv_heads));
    return ForwardInputs{dev(b.input_ids), dev(b.positions), dev(b.slot_mapping), dev(b.seq_lens), dev(b.block_tables),
                         dev(b.query_start_loc), b.num_tokens, b.num_seqs, plan.num_decodes, b.max_blocks_per_seq,
                         plan.max_prefill_query_len,
                         DecodeSplits(plan.num_decodes, plan.max_decode_len, m_.num_kv_heads, num_sms_)};
  }

  // The layers and the LM head on `in`. Returns the sampled rows' logits [num_seqs, vocab]:
  // in `returned_logits` when logits_mode is 1, else in the scratch rows; logits_mode 2 also
  // writes every token's logits into `returned_logits` (tests).
  const float* Forward(const ForwardInputs& in, int logits_mode, float* returned_logits) {
    cudaStream_t stream = compute_.get();
    const int nt = in.num_tokens, ns = in.num_seqs, nd = in.num_decodes;
    const int hidden = m_.hidden_size, hd = m_.head_dim, nh = m_.num_heads, nkv = m_.num_kv_heads;
    const int inter = m_.intermediate_size, vocab = m_.vocab_size;
    const int qkv_width = (nh + 2 * nkv) * hd;
    const float eps = m_.rms_norm_eps;
    T* residual = residual_.get<T>();  // [max_tokens, hidden]
    T* normed = normed_.get<T>();      // [max_tokens, hidden]
    T* delta = delta_.get<T>();        // [max_tokens, hidden]
    T* qkv = qkv_.get<T>();            // [max_tokens, qkv_width]
    T* attn = attn_.get<T>();          // [max_tokens, nh * hd]
    T* gate_up = gate_up_.get<T>();    // [max_tokens, 2 * inter]
    T* act = act_.get<T>();            // [max_tokens, inter]
    const int mbps = in.max_blocks_per_seq;
    const AttentionShape decode_shape{nd, nd, nh, nkv, hd, config_.block_size, mbps, qkv_width};
    const AttentionShape prefill_shape{ns - nd, nt, nh, nkv, hd, config_.block_size, mbps, qkv_width};

    EmbeddingGather<T>(in.input_ids, weights_->embed, residual, nt, hidden, vocab, stream);
    timer_.Mark("embedding", stream);
    const size_t layer_cache_elems = KvLayerElems();
    for (int i = 0; i < m_.num_layers; ++i) {
      const GpuLayerWeights<T>& L = weights_->layers[i];
      T* k_cache = kv_cache_.get<T>() + (2 * static_cast<size_t>(i)) * layer_cache_elems;
      T* v_cache = k_cache + layer_cache_elems;
      FusedAddRmsNorm<T>(i == 0 ? nullptr : delta, residual, L.input_norm, normed, nt, hidden, eps, stream);
      timer_.Mark("add_rms_norm", stream);
      Linear<T>(cublas_, normed, L.qkv, qkv, false, nt, qkv_width, hidden);
      timer_.Mark("gemm_qkv", stream);
      QkvRopeKvWrite<T>(qkv, L.qkv_bias, L.q_norm, L.k_norm, inv_freq_.get<float>(), in.positions, in.slot_mapping,
                        k_cache, v_cache, nt, nh, nkv, hd, eps, stream);
      timer_.Mark("qkv_rope_kv_write", stream);
      if (nd > 0) {
        // split_tokens 0: each sequence's own length / num_splits (one shape for any context).
        PagedDecodeAttention<T>(qkv, k_cache, v_cache, in.block_tables, in.seq_lens, attn,
                                decode_workspace_.get<float>(), decode_shape, in.num_splits, 0, stream);
        timer_.Mark("attention_decode", stream);
      }
      if (nd < ns) {
        // The other sequences: their own rows of the per-sequence columns; token rows stay absolute.
        PrefillAttention<T>(qkv, k_cache, v_cache, in.block_tables + static_cast<size_t>(nd) * mbps, in.seq_lens + nd,
                            in.query_start_loc + nd, in.positions, attn, prefill_shape, in.max_prefill_query_len, stream);
        timer_.Mark("attention_prefill", stream);
      }
      Linear<T>(cublas_, attn, L.o_proj, delta, false, nt, hidden, nh * hd);
      timer_.Mark("gemm_o", stream);
      FusedAddRmsNorm<T>(delta, residual, L.post_norm, normed, nt, hidden, eps, stream);
      timer_.Mark("add_rms_norm", stream);
      Linear<T>(cublas_, normed, L.gate_up, gate_up, false, nt, 2 * inter, hidden);
      timer_.Mark("gemm_gate_up", stream);
      SiluMul<T>(gate_up, act, nt, inter, stream);
      timer_.Mark("silu_mul", stream);
      Linear<T>(cublas_, act, L.down, delta, false, nt, hidden, inter);
      timer_.Mark("gemm_down", stream);
    }
    FusedAddRmsNorm<T>(delta, residual, weights_->final_norm, normed, nt, hidden, eps, stream);
    timer_.Mark("add_rms_norm", stream);
    if (logits_mode == 2) Linear<T>(cublas_, normed, weights_->lm_head, returned_logits, true, nt, vocab, hidden);
    // Each sequence's last token; with one token per sequence those are the rows themselves.
    const T* last = normed;
    if (nd < ns) {
      GatherLastTokenRows<T>(normed, in.query_start_loc, last_hidden_.get<T>(), ns, hidden, stream);
      last = last_hidden_.get<T>();
    }
    float* logits = logits_mode == 1 ? returned_logits : logits_scratch_.get<float>();  // [num_seqs, vocab]
    Linear<T>(cublas_, last, weights_->lm_head, logits, true, ns, vocab, hidden);
    timer_.Mark("lm_head", stream);
    return logits;
  }

  // ---- CUDA graphs of decode-only steps ----

  // Decode-only steps (step_plan.h), unless the executor runs eagerly, the profiler times
  // kernels one by one, or graphs are off (before the KV cache is sized, or after a failed capture).
  bool CanReplayDecodeGraph(const StepBatch& b, const ForwardInputs& in) const {
    if (config_.enforce_eager || timer_.enabled() || graph_sizes_.empty()) return false;
    return IsGraphableDecodeStep(b, in.num_decodes, config_.block_size, graph_table_width_);
  }

  // Copies the batch into the graph inputs of the smallest captured size that holds it,
  // capturing that graph first if it is new, and replays it. Returns the logits rows, or null
  // when the capture failed: graphs are then off for good and the caller runs eagerly, so
  // that a serving run (or a benchmark) goes on; tests see it in timings' graph flag.
  const float* ReplayDecodeGraph(const ForwardInputs& in) {
    cudaStream_t stream = compute_.get();
    const size_t index = DecodeGraphIndex(graph_sizes_, in.num_seqs);
    const int padded = graph_sizes_[index];
    const int width = graph_table_width_;
    int32_t* base = graph_inputs_.get<int32_t>();
    const DecodeGraphInputs dst{base, base + max_seqs_, base + 2 * max_seqs_, base + 3 * max_seqs_, base + 4 * max_seqs_};
    PadDecodeGraphInputs(in.input_ids, in.positions, in.slot_mapping, in.seq_lens, in.block_tables, in.num_seqs,
                         in.max_blocks_per_seq, config_.block_size, dst, padded, width, stream);
    if (!graph_execs_[index].get()) {
      try {
        graph_execs_[index] = CaptureDecodeGraph(dst, padded);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "spindle cuda: capturing the decode graph of batch size %d failed, CUDA graphs off: %s\n",
                     padded, e.what());
        graph_execs_.clear();
        graph_sizes_.clear();
        (void)cudaGetLastError();  // a capture error is not sticky; a sticky one fails the eager pass too
        return nullptr;
      }
    }
    CUDA_CHECK(cudaGraphLaunch(graph_execs_[index].get(), stream));
    return logits_scratch_.get<float>();
  }

  // The forward pass of `padded` one-token sequences read from `inputs`, recorded once. The
  // context split depends on the batch size only: each sequence is cut by its own length.
  GraphExec CaptureDecodeGraph(const DecodeGraphInputs& inputs, int padded) {
    cudaStream_t stream = compute_.get();
    const ForwardInputs in{inputs.input_ids, inputs.positions, inputs.slot_mapping, inputs.seq_lens, inputs.block_tables,
                           nullptr /* query_start_loc: read only when some sequence has several tokens */,
                           padded, padded, padded, graph_table_width_, 0,
                           DecodeSplits(padded, graph_table_width_ * config_.block_size, m_.num_kv_heads, num_sms_)};
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      Forward(in, 0, nullptr);
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    const cudaError_t end_err = cudaStreamEndCapture(stream, &graph);  // ends the capture even when it fails
    if (end_err != cudaSuccess && graph) cudaGraphDestroy(graph);
    CUDA_CHECK(end_err);
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_CHECK(err);
    return GraphExec(exec);
  }

  // Graph inputs for up to max_seqs sequences, tables as wide as the longest sequence the
  // model or the cache allows. Captured graphs point at the KV cache, so they are dropped
  // whenever it is reallocated.
  void PrepareDecodeGraphs() {
    graph_execs_.clear();
    graph_sizes_ = DecodeGraphSizes(max_seqs_);
    graph_execs_.resize(graph_sizes_.size());
    const int64_t longest = (static_cast<int64_t>(m_.max_position_embeddings) + config_.block_size - 1) / config_.block_size;
    graph_table_width_ = static_cast<int>(std::min<int64_t>(longest, num_blocks_));
    graph_inputs_.Grow((4 + static_cast<size_t>(graph_table_width_)) * max_seqs_ * sizeof(int32_t));
  }

  size_t KvLayerElems() const {
    return static_cast<size_t>(num_blocks_) * config_.block_size * m_.num_kv_heads * m_.head_dim;
  }

  void AllocateScratch() {
    const size_t t = max_tokens_, hidden = m_.hidden_size, hd = m_.head_dim;
    const size_t qkv_width = static_cast<size_t>(m_.num_heads + 2 * m_.num_kv_heads) * hd;
    residual_.Grow(t * hidden * sizeof(T));
    normed_.Grow(t * hidden * sizeof(T));
    delta_.Grow(t * hidden * sizeof(T));
    qkv_.Grow(t * qkv_width * sizeof(T));
    attn_.Grow(t * m_.num_heads * hd * sizeof(T));
    gate_up_.Grow(t * 2 * m_.intermediate_size * sizeof(T));
    act_.Grow(t * m_.intermediate_size * sizeof(T));
    last_hidden_.Grow(static_cast<size_t>(max_seqs_) * hidden * sizeof(T));
    logits_scratch_.Grow(static_cast<size_t>(max_seqs_) * m_.vocab_size * sizeof(float));
    const size_t sampler_bytes = SampleStepWorkspaceBytes(max_seqs_, m_.vocab_size);
    if (sampler_bytes > 0) sampler_workspace_.Grow(sampler_bytes);
    decode_workspace_.Grow(DecodeAttentionWorkspaceBytes(max_seqs_, m_.num_heads, m_.head_dim, kMaxDecodeSplits));
  }

  void AllocateKvCache(int32_t num_blocks) {
    graph_execs_.clear();
    kv_cache_.Release();
    num_blocks_ = num_blocks;
    kv_cache_.Grow(2 * static_cast<size_t>(m_.num_layers) * KvLayerElems() * sizeof(T));
  }

  size_t KvBlockBytes() const {
    return 2 * static_cast<size_t>(m_.num_layers) * config_.block_size * m_.num_kv_heads * m_.head_dim * sizeof(T);
  }

  // numBlocks = 0: run one step of maxNumBatchedTokens prompt tokens with a cache just large
  // enough for it, then give the cache what gpuMemoryUtilization leaves.
  void ProfileAndSizeKvCache() {
    const int profile_tokens = std::max(1, std::min(config_.max_num_batched_tokens, max_tokens_));
    const int profile_blocks = (profile_tokens + config_.block_size - 1) / config_.block_size;
    AllocateKvCache(profile_blocks);
    const std::vector<int32_t> packed = PackProfileBatch(profile_tokens, config_.block_size, m_.vocab_size);
    const StepBatch batch = ParseStepBatch(packed.data(), packed.size() * 4);
    std::vector<char> result(StepResultByteLength(batch, m_.vocab_size));
    Step(batch, result.data());
    timer_.Reset();  // a cold start-up step, not part of what a profiled run measures
    kv_cache_.Release();
    CUDA_CHECK(cudaDeviceSynchronize());
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double budget = config_.gpu_memory_utilization * static_cast<double>(total_bytes) -
                          static_cast<double>(total_bytes - free_bytes);
    const int64_t blocks = budget > 0 ? static_cast<int64_t>(budget / KvBlockBytes()) : 0;
    if (blocks < profile_blocks)
      throw std::runtime_error("cuda: gpuMemoryUtilization " + std::to_string(config_.gpu_memory_utilization) +
                               " leaves room for only " + std::to_string(blocks) + " KV blocks (need " +
                               std::to_string(profile_blocks) + ")");
    AllocateKvCache(static_cast<int32_t>(std::min<int64_t>(blocks, INT32_MAX)));
    std::fprintf(stderr, "spindle cuda: %s, weights %.2f GiB, %d KV cache blocks of %d tokens (%.2f GiB)\n",
                 device_name_.c_str(), weights_->bytes() / 1073741824.0, num_blocks_, config_.block_size,
                 num_blocks_ * static_cast<double>(KvBlockBytes()) / 1073741824.0);
  }

  ExecutorConfig config_;
  ModelConfig m_;
  std::string device_name_;
  int num_sms_ = 0;
  int max_tokens_ = 0, max_seqs_ = 0;
  int32_t num_blocks_ = 0;
  uint64_t num_d2h_copies_ = 0, step_index_ = 0;

  Stream compute_, copy_;
  Event ev_start_, ev_forward_, ev_sampled_, ev_copied_;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer cublas_workspace_;
  std::unique_ptr<GpuWeights<T>> weights_;
  DeviceBuffer inv_freq_;  // [head_dim / 2] float
  DeviceBuffer kv_cache_;  // [num_layers][k, v][num_blocks, block_size, nkv, head_dim] T
  DeviceBuffer residual_, normed_, delta_, qkv_, attn_, gate_up_, act_, last_hidden_, logits_scratch_, decode_workspace_;
  DeviceBuffer sampler_workspace_;
  PinnedBuffer pinned_batch_;     // the packed batch, staged for its one H2D copy
  DeviceBuffer device_batch_;     // the packed batch on the device
  DeviceBuffer device_slab_;      // the step result, laid out as batch_layout.h's StepResult
  PinnedBuffer pinned_slots_[2];  // D2H targets, alternating by step

  std::vector<int> graph_sizes_;          // padded batch sizes, ascending
  std::vector<GraphExec> graph_execs_;    // per size, captured on first use
  int graph_table_width_ = 0;             // block-table row stride of the graph inputs
  DeviceBuffer graph_inputs_;             // DecodeGraphInputs' columns, max_seqs rows each
  PhaseTimer timer_;                      // SPINDLE_CUDA_PROFILE only
};

}  // namespace

std::unique_ptr<Backend> CreateBackend(const ExecutorConfig& config) {
  if (config.dtype == DType::kF32) return std::make_unique<CudaBackend<float>>(config);
  if (config.dtype == DType::kBF16) return std::make_unique<CudaBackend<__nv_bfloat16>>(config);
  throw std::runtime_error("cuda: dtype must be float32 or bfloat16");
}

}  // namespace spindle::cuda
