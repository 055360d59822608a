// The CUDA backend: one model on device 0, stepping one packed batch at a time.
//   Step: packed batch -> pinned staging -> ONE H2D copy -> forward on the compute stream
//   -> sampling -> every result in ONE device slab laid out as the step result -> ONE D2H
//   copy on the copy stream (after the compute stream's event) into pinned slot step % 2
//   -> wait for that copy's event (the step's one host synchronisation) -> out.
// timings[ResultTiming.deviceToHostCopies] reports the D2H copies made by the step.
// Forward: the leading one-token sequences (decodes) through the paged decode-attention
// kernel, the others through the prefill kernel. Decode-only steps replay a CUDA graph
// captured per padded batch size (1, 2, 4, 8, 16, ... max_seqs) unless enforce_eager.
// SPINDLE_CUDA_PROFILE=file writes per-phase GPU time (phase_timer.h) and turns graphs off.
#pragma once
#include <memory>

#include "backend.h"

namespace spindle::cuda {

std::unique_ptr<Backend> CreateBackend(const ExecutorConfig& config);

}  // namespace spindle::cuda
