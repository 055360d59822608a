// Orders the steps in flight on one executor. Async scheduling launches step N+1 while step N
// still runs: each step's worker runs on its own libuv thread, so the second waits here for
// the first to end and then starts at once, without a round trip through JavaScript. Its
// batch may refer to tokens the first one sampled (pending tokens): they are filled in from
// the first step's result here, after the wait.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_layout.h"

namespace spindle {

class StepQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // JS thread: the step's place in line (steps run in the order they were enqueued).
  uint64_t Enqueue() { return next_ticket_++; }

  // Worker thread: blocks until every step enqueued before `ticket` has finished. Returns the
  // milliseconds the executor then had no step running (since the previous one ended; 0 for
  // the first step).
  double WaitTurn(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mutex_);
    turn_.wait(lock, [&] { return next_to_run_ == ticket; });
    if (!has_finished_step_) return 0;
    return std::chrono::duration<double, std::milli>(Clock::now() - last_end_).count();
  }

  // Worker thread, after WaitTurn: writes the previous step's sampled token into every
  // pending-token reference of `batch` (its words, which the worker owns). Throws when a
  // reference has no token: the previous step failed, or its row sampled none.
  void FillPendingTokens(int32_t* words, const StepBatch& batch) const {
    if (!batch.has_pending_tokens) return;
    auto fill = [&](const int32_t* column, int32_t count, const char* name) {
      int32_t* mutable_column = words + (column - reinterpret_cast<const int32_t*>(words));
      for (int32_t i = 0; i < count; ++i) {
        if (mutable_column[i] >= 0) continue;
        const int32_t row = PendingTokenRow(mutable_column[i]);
        if (!previous_ok_) throw std::runtime_error("step batch: the previous step failed, so its pending tokens do not exist");
        if (row >= int32_t(previous_sampled_.size()) || previous_sampled_[row] < 0) {
          throw std::runtime_error(std::string("step batch: ") + name + "[" + std::to_string(i) + "] refers to row " +
                                   std::to_string(row) + " of the previous step, which sampled no token there");
        }
        mutable_column[i] = previous_sampled_[row];
      }
    };
    fill(batch.input_ids, batch.num_tokens, "inputIds");
    fill(batch.penalty_tokens, batch.num_penalty_tokens, "penaltyTokens");
  }

  // Worker thread: the step holding the turn is done (ok = false when it failed); keeps its
  // sampled ids for the next step's pending tokens and passes the turn on.
  void Finish(std::vector<int32_t> sampled, bool ok) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      previous_sampled_ = std::move(sampled);
      previous_ok_ = ok;
      has_finished_step_ = true;
      last_end_ = Clock::now();
      ++next_to_run_;
    }
    turn_.notify_all();
  }

 private:
  uint64_t next_ticket_ = 0;  // JS thread only
  std::mutex mutex_;
  std::condition_variable turn_;
  uint64_t next_to_run_ = 0;
  std::vector<int32_t> previous_sampled_;
  bool previous_ok_ = true;
  bool has_finished_step_ = false;
  Clock::time_point last_end_;
};

}  // namespace spindle
