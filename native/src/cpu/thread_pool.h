// A fixed pool of worker threads, created once per backend. ParallelFor splits a range into
// chunks that the workers and the calling thread take dynamically, so uneven chunks (attention
// over contexts of different lengths) still balance.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace spindle {
namespace cpu {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread; 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(begin, end) over disjoint chunks covering [0, n), each at least `min_chunk` long
  // (except the last), and returns when all are done. The first exception thrown by fn is
  // rethrown here after every chunk has finished. Not reentrant.
  void ParallelFor(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop();
  void RunChunks();

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;  // bumped for each ParallelFor
  int num_busy_ = 0;         // workers still inside the current job
  bool stopping_ = false;
  // The current job.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
};

}  // namespace cpu
}  // namespace spindle
