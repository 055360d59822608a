// The CPU backend: one thread pool, one model; Step = forward + sample, with wall-clock timings.
// The batch arrives validated by the executor (ValidateStepBatch in executor.cc).
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "cpu/model.h"
#include "cpu/sampler.h"
#include "cpu/thread_pool.h"

namespace spindle {
namespace {

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const ExecutorConfig& config)
      : vocab_size_(config.model.vocab_size), pool_(config.num_threads), model_(config, pool_) {}

  void Step(const StepBatch& batch, void* out) override {
    const auto start = std::chrono::steady_clock::now();
    StepResult result = LayStepResult(out, batch);
    std::memset(result.timings, 0, sizeof(float) * kResultHeaderFloats);

    // Which tokens need logits: logitsMode 2 every token; 1 the last token of every sequence;
    // 0 the last token of every sampled sequence. row_of_seq maps a sequence to its row.
    std::vector<int32_t> logit_tokens;
    std::vector<int32_t> row_of_seq(batch.num_seqs, -1);
    if (batch.logits_mode == 2) {
      for (int32_t i = 0; i < batch.num_tokens; ++i) logit_tokens.push_back(i);
      for (int32_t s = 0; s < batch.num_seqs; ++s) row_of_seq[s] = batch.query_start_loc[s + 1] - 1;
    } else {
      for (int32_t s = 0; s < batch.num_seqs; ++s) {
        if (batch.logits_mode == 1 || batch.is_sampled[s]) {
          row_of_seq[s] = static_cast<int32_t>(logit_tokens.size());
          logit_tokens.push_back(batch.query_start_loc[s + 1] - 1);
        }
      }
    }
    // With logits asked for, they are computed straight into the result.
    float* logits = result.logits;
    if (batch.logits_mode == 0) {
      logits_.resize(logit_tokens.size() * size_t(vocab_size_));
      logits = logits_.data();
    }
    model_.Forward(batch, logit_tokens, logits);
    const double forward_ms = MsSince(start);

    const auto sample_start = std::chrono::steady_clock::now();
    cpu::SampleBatch(pool_, batch, logits, row_of_seq.data(), vocab_size_, result);
    result.timings[1] = static_cast<float>(MsSince(sample_start));  // sampleMs
    result.timings[0] = static_cast<float>(forward_ms);              // forwardMs
    result.timings[2] = 0.f;                                         // copyMs: no device copy
    result.timings[3] = static_cast<float>(MsSince(start));          // totalMs
  }

  int32_t num_blocks() const override { return model_.num_blocks(); }

  std::string device_name() const override {
    return "cpu (" + std::to_string(pool_.num_threads()) + " threads)";
  }

 private:
  int32_t vocab_size_;
  cpu::ThreadPool pool_;
  cpu::CpuModel model_;
  std::vector<float> logits_;  // [num_logit_rows, vocab] when the result holds no logits
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(const ExecutorConfig& config) {
  return std::make_unique<CpuBackend>(config);
}

}  // namespace spindle
