// The inputs of a captured decode graph (kernels.h): a graph replays fixed addresses, while
// each step's batch lands wherever its packed layout puts it, so the decode columns are
// copied into the graph's buffers first, with padding rows that compute nothing anyone reads.
#include "cuda_check.h"
#include "kernels.h"

namespace spindle::cuda {
namespace {

__global__ void pad_decode_graph_inputs_kernel(const int32_t* input_ids, const int32_t* positions,
                                               const int32_t* slot_mapping, const int32_t* seq_lens,
                                               const int32_t* block_tables, int num_seqs, int max_blocks_per_seq,
                                               int block_size, DecodeGraphInputs dst, int padded_width) {
  const int row = blockIdx.x;
  const bool real = row < num_seqs;
  const int len = real ? seq_lens[row] : 0;
  if (threadIdx.x == 0) {
    dst.input_ids[row] = real ? input_ids[row] : 0;
    dst.positions[row] = real ? positions[row] : 0;
    dst.slot_mapping[row] = real ? slot_mapping[row] : -1;
    dst.seq_lens[row] = len;
  }
  // Only the blocks the sequence uses: the attention kernel reads no further.
  const int num_blocks = min((len + block_size - 1) / block_size, min(max_blocks_per_seq, padded_width));
  const int32_t* src = block_tables + static_cast<size_t>(row) * max_blocks_per_seq;
  int32_t* out = dst.block_tables + static_cast<size_t>(row) * padded_width;
  for (int j = threadIdx.x; j < num_blocks; j += blockDim.x) out[j] = src[j];
}

}  // namespace

void PadDecodeGraphInputs(const int32_t* input_ids, const int32_t* positions, const int32_t* slot_mapping,
                          const int32_t* seq_lens, const int32_t* block_tables, int num_seqs, int max_blocks_per_seq,
                          int block_size, const DecodeGraphInputs& dst, int padded_seqs, int padded_width,
                          cudaStream_t stream) {
  if (padded_seqs == 0) return;
  pad_decode_graph_inputs_kernel<<<padded_seqs, 128, 0, stream>>>(input_ids, positions, slot_mapping, seq_lens,
                                                                  block_tables, num_seqs, max_blocks_per_seq,
                                                                  block_size, dst, padded_width);
  CUDA_CHECK_LAUNCH("pad_decode_graph_inputs_kernel");
}

}  // namespace spindle::cuda
