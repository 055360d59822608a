// The Executor exported to JavaScript (NativeExecutor in src/engine/native.ts): reads the
// options into an ExecutorConfig, owns one backend, and runs each step on a worker thread so
// the JS thread stays free. Steps run one at a time, in call order; a second may be handed
// over while one runs (async scheduling), and starts the moment the first ends.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "backend.h"
#include "executor_config.h"
#include "step_queue.h"

namespace spindle {

// Reads NativeExecutorOptions; throws Napi::TypeError / Napi::RangeError naming the option.
ExecutorConfig ReadExecutorOptions(const Napi::Object& options);

// Checks a parsed batch against the model and the cache before any backend touches it, so a
// bad batch leaves the KV cache untouched. Throws std::runtime_error naming the column.
void ValidateStepBatch(const StepBatch& batch, const ExecutorConfig& config, int32_t num_blocks);

class Executor : public Napi::ObjectWrap<Executor> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Executor(const Napi::CallbackInfo& info);

 private:
  friend class StepWorker;
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetNumBlocks(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDeviceName(const Napi::CallbackInfo& info);

  std::shared_ptr<const ExecutorConfig> config_;  // shared with each step's worker
  // Shared with the in-flight step, so close() during a step frees it after the step ends.
  std::shared_ptr<Backend> backend_;
  static constexpr int kMaxStepsInFlight = 2;
  // Orders the steps in flight; shared with their workers.
  std::shared_ptr<StepQueue> queue_ = std::make_shared<StepQueue>();
  int num_steps_in_flight_ = 0;
  int32_t num_blocks_ = 0;
  std::string device_name_;
};

}  // namespace spindle
