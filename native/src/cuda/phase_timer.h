// Where a step's GPU time goes, by phase (embedding, each GEMM, attention, sampling...), for
// profiling runs only: on when the environment variable SPINDLE_CUDA_PROFILE names a file,
// to which the totals are written as JSON when the backend is destroyed.
// Mark(phase) records a CUDA event on the compute stream; the time between one mark and the
// next is charged to the next's phase. Collect() runs after the step's one synchronisation,
// so profiling adds event records but no extra host waits. Steps are grouped by kind
// ("decode": every sequence computes one token; "mixed": the rest).
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cuda_check.h"

namespace spindle::cuda {

class PhaseTimer {
 public:
  PhaseTimer() {
    const char* path = std::getenv("SPINDLE_CUDA_PROFILE");
    if (path && *path) path_ = path;
  }
  ~PhaseTimer() {
    WriteReport();
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

  bool enabled() const { return !path_.empty(); }

  // Starts a step of the given kind; the first mark after it is the step's time origin.
  void BeginStep(const char* kind, cudaStream_t stream, int num_tokens) {
    if (!enabled()) return;
    kind_ = kind;
    marks_.clear();
    Record("", stream);
    Totals& t = totals_[kind_];
    t.steps += 1;
    t.tokens += num_tokens;
  }
  void Mark(const char* phase, cudaStream_t stream) {
    if (enabled()) Record(phase, stream);
  }
  // Forgets every step so far (the KV-sizing step at start-up: one cold prefill of
  // maxNumBatchedTokens, first launches included, that would skew the "mixed" totals).
  void Reset() {
    totals_.clear();
    marks_.clear();
  }
  // After the step's synchronisation: adds each interval to its phase.
  void Collect() {
    if (!enabled() || marks_.empty()) return;
    Totals& t = totals_[kind_];
    for (size_t i = 1; i < marks_.size(); ++i) {
      float ms = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
      t.phase_ms[marks_[i]] += ms;
    }
    marks_.clear();
  }

 private:
  struct Totals {
    long steps = 0, tokens = 0;
    std::map<std::string, double> phase_ms;
  };

  void Record(const char* phase, cudaStream_t stream) {
    const size_t i = marks_.size();
    if (i == events_.size()) {
      cudaEvent_t e;
      CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    CUDA_CHECK(cudaEventRecord(events_[i], stream));
    marks_.push_back(phase);
  }

  void WriteReport() const {
    if (!enabled()) return;
    FILE* f = std::fopen(path_.c_str(), "w");
    if (!f) return;
    std::fprintf(f, "{\n");
    size_t k = 0;
    for (const auto& [kind, t] : totals_) {
      std::fprintf(f, "  \"%s\": {\"steps\": %ld, \"tokens\": %ld, \"phaseMs\": {", kind.c_str(), t.steps, t.tokens);
      size_t j = 0;
      for (const auto& [phase, ms] : t.phase_ms) std::fprintf(f, "%s\"%s\": %.3f", j++ ? ", " : "", phase.c_str(), ms);
      std::fprintf(f, "}}%s\n", ++k < totals_.size() ? "," : "");
    }
    std::fprintf(f, "}\n");
    std::fclose(f);
  }

  std::string path_, kind_;
  std::vector<cudaEvent_t> events_;  // reused across steps
  std::vector<std::string> marks_;   // phase of each recorded event this step
  std::map<std::string, Totals> totals_;
};

}  // namespace spindle::cuda
