// The batched GPU sampler (contract and semantics: sampler.h; shared math: sampling_math.h).
//
// One launch for the whole batch: row s is sampled by one cluster of kClusterBlocks thread
// blocks. Block `rank` copies tokens [rank * slice_len, (rank + 1) * slice_len) of the row
// into its shared memory once; every later pass (penalties, max + softmax sum, radix selects,
// draw, top-N) reads shared memory only. Partial results cross the cluster through
// distributed shared memory: each block reads every rank's partial in rank order, so all
// blocks reach the same, deterministic result with no atomics on floats.
//
// Thresholds (top_k, top_p, top-N) are radix selects over the order-preserving uint32 key of
// each float: 8-bit digit passes, each a 256-bin histogram (warp-aggregated shared atomics),
// summed over the cluster and scanned from the top. top_p's histogram carries probability
// mass as 2^-40 fixed point in uint64, so sums are exact and order-free.
//
// Candidate pool: every select of a row has a cheap lower bound on its threshold (warp maxima
// for top_k / top-N, the tail bound for top_p with a lower bound on the mass), known right
// after the max pass. The softmax pass, which reads every token anyway, gathers each block's
// tokens at or above the lowest of these bounds into a shared-memory pool; the selects, the draw and the top-N gather then walk the pool (a few hundred tokens on
// typical rows) instead of the 16k-token slice. A block whose pool overflows walks its slice
// instead: every consumer counts only keys >= its own floor, so both give the same integer
// histograms and the same draw, and blocks of one cluster may mix the two.
#include <cooperative_groups.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda/sampler.h"
#include "sampling_math.h"

namespace cg = cooperative_groups;

namespace spindle {
namespace cuda {
namespace {

constexpr int kClusterBlocks = 8;
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kBlocksPerSm = 2;  // __launch_bounds__ below; the pool is sized to keep it
constexpr int kRadixBins = 256;
constexpr int kMaxTopCandidates = 32;  // top-N candidates gathered in rank 0 (>= kMaxTopLogprobs)
constexpr int32_t kMaxPoolTokens = 4096;  // per block: spread rows need ~300-1000
constexpr float kMassScale = 1099511627776.0f;  // 2^40
constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kMaxGumbel = 23.f;  // > -log(-log1p(-v_max)) of sampling_math.h's GumbelNoise

static_assert(kMaxTopLogprobs <= kMaxTopCandidates, "top-N candidates must fit");
static_assert(kSamplerMaxVocab / kClusterBlocks < (1 << 24), "pool indices and counts fit in int32");
static_assert(kRadixBins == 8 * 32, "the bin scan gives each lane of one warp 8 bins");

using u64 = unsigned long long;

// Larger float -> larger key (for all non-NaN floats, -inf and +inf included).
__device__ __forceinline__ uint32_t OrderedKey(float v) {
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float KeyToFloat(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

struct Best {
  float value;
  int32_t id;
};

__device__ __forceinline__ Best Better(Best a, Best b) {
  return RanksBefore(b.value, b.id, a.value, a.id) ? b : a;
}

__device__ __forceinline__ Best ShuffleBest(Best b, int offset) {
  return Best{__shfl_down_sync(kFullMask, b.value, offset), __shfl_down_sync(kFullMask, b.id, offset)};
}

// Probability mass of one token relative to the row maximum, as 2^-40 fixed point.
__device__ __forceinline__ u64 MassWeight(float v, float row_max) {
  return __float2ull_rn(__expf(v - row_max) * kMassScale);
}

// Block-private state of one row's cluster. Fields read by other blocks of the cluster
// (through map_shared_rank) are marked [cluster].
struct RowShared {
  u64 hist[2][kRadixBins];      // [cluster] this block's histogram; two, alternating by pass
  u64 hist_total[kRadixBins];   // the cluster's histogram of the current pass
  float slot_value[4];          // [cluster] this block's partial of reduction #i
  u64 slot_mass;                // [cluster] this block's fixed-point softmax mass
  float warp_max_sorted[kWarps];  // [cluster] this block's warp maxima, largest first
  int32_t slot_id[4];           // [cluster]
  int32_t slot_greater, slot_equal;  // [cluster] top-N: local counts above / at the threshold
  int32_t slot_ties, slot_cutoff;    // [cluster] top-p ties: local count, local cutoff id
  u64 slot_above, slot_at;           // [cluster] draw check: mass above / at the winner's key
  int32_t slot_ties_before;          // [cluster] draw check: ties at its key with lower ids
  int32_t tie_found;
  float top_value[kMaxTopCandidates];  // [cluster] rank 0 only: top-N candidates
  int32_t top_id[kMaxTopCandidates];   // [cluster]
  int32_t top_count;                   // [cluster]
  int32_t pool_count;           // tokens this block's pool scan gathered (> capacity: overflow)
  float warp_value[kWarps];     // block-reduction scratch
  u64 warp_mass[kWarps];
  u64 warp_mass_at[kWarps];
  int32_t warp_id[kWarps];
  int32_t warp_count[kWarps];
  float bcast_value;            // results broadcast to the block
  int32_t bcast_id;
  uint32_t bcast_bin;
  u64 bcast_above, bcast_target, bcast_bin_weight, bcast_mass;
};

// Reductions over the cluster. Each returns the same value in every thread of every block.
struct RowContext {
  cg::cluster_group cluster;
  RowShared& sh;
  int tid, lane, warp;

  // With `publish_warp_maxima` (the row max, once per row), also writes this block's sorted
  // warp maxima for LowerBoundOfKth before the cluster sync, so they are usable on return.
  __device__ Best ReduceBest(Best b, int slot, bool publish_warp_maxima = false) {
    for (int offset = 16; offset > 0; offset >>= 1) b = Better(b, ShuffleBest(b, offset));
    if (lane == 0) { sh.warp_value[warp] = b.value; sh.warp_id[warp] = b.id; }
    __syncthreads();
    if (warp == 0) {
      if (publish_warp_maxima) SortWarpMaxima();
      b = lane < kWarps ? Best{sh.warp_value[lane], sh.warp_id[lane]} : Best{-INFINITY, INT_MAX};
      for (int offset = 16; offset > 0; offset >>= 1) b = Better(b, ShuffleBest(b, offset));
      if (lane == 0) { sh.slot_value[slot] = b.value; sh.slot_id[slot] = b.id; }
    }
    cluster.sync();
    if (warp == 0) {
      b = Best{-INFINITY, INT_MAX};
      if (lane < kClusterBlocks) {
        b.value = *cluster.map_shared_rank(&sh.slot_value[slot], lane);
        b.id = *cluster.map_shared_rank(&sh.slot_id[slot], lane);
      }
      for (int offset = 16; offset > 0; offset >>= 1) b = Better(b, ShuffleBest(b, offset));
      if (lane == 0) { sh.bcast_value = b.value; sh.bcast_id = b.id; }
    }
    __syncthreads();
    return Best{sh.bcast_value, sh.bcast_id};
  }

  // Float sum in a fixed order (lanes, then warps, then ranks): deterministic; and an exact
  // uint64 sum alongside.
  __device__ float ReduceSum(float v, u64& mass, int slot) {
    for (int offset = 16; offset > 0; offset >>= 1) {
      v += __shfl_down_sync(kFullMask, v, offset);
      mass += __shfl_down_sync(kFullMask, mass, offset);
    }
    if (lane == 0) { sh.warp_value[warp] = v; sh.warp_mass[warp] = mass; }
    __syncthreads();
    if (warp == 0) {
      v = lane < kWarps ? sh.warp_value[lane] : 0.f;
      mass = lane < kWarps ? sh.warp_mass[lane] : 0;
      for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(kFullMask, v, offset);
        mass += __shfl_down_sync(kFullMask, mass, offset);
      }
      if (lane == 0) { sh.slot_value[slot] = v; sh.slot_mass = mass; }
    }
    cluster.sync();
    if (warp == 0) {
      v = lane < kClusterBlocks ? *cluster.map_shared_rank(&sh.slot_value[slot], lane) : 0.f;
      mass = lane < kClusterBlocks ? *cluster.map_shared_rank(&sh.slot_mass, lane) : 0;
      for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(kFullMask, v, offset);
        mass += __shfl_down_sync(kFullMask, mass, offset);
      }
      if (lane == 0) { sh.bcast_value = v; sh.bcast_mass = mass; }
    }
    __syncthreads();
    mass = sh.bcast_mass;
    return sh.bcast_value;
  }

  // A lower bound on the softmax mass M = sum_i exp(x_i - row_max): the terms of the 128 warp
  // maxima (distinct tokens), summed in the same order in every block (so every block gets the
  // same value). Valid once ReduceBest(..., true) has returned.
  __device__ float MassLowerBound(float row_max) {
    static_assert(kClusterBlocks * kWarps <= kThreads, "one warp maximum per thread");
    float term = 0.f;
    if (tid < kClusterBlocks * kWarps) {
      const float v = cluster.map_shared_rank(sh.warp_max_sorted, tid / kWarps)[tid % kWarps];
      term = v == -INFINITY ? 0.f : __expf(v - row_max);
    }
    for (int offset = 16; offset > 0; offset >>= 1) term += __shfl_down_sync(kFullMask, term, offset);
    if (lane == 0) sh.warp_value[warp] = term;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < kClusterBlocks * kWarps / 32; ++w) total += sh.warp_value[w];
    __syncthreads();  // warp_value is reused by the next reduction
    return total;
  }

  // Warp 0, after the warps' maxima are in warp_value: writes them to warp_max_sorted,
  // largest first.
  __device__ void SortWarpMaxima() {
    const float mine = lane < kWarps ? sh.warp_value[lane] : -INFINITY;
    int32_t place = 0;
    for (int w = 0; w < kWarps; ++w) {
      const float other = sh.warp_value[w];
      place += other > mine || (other == mine && w < lane);
    }
    if (lane < kWarps) sh.warp_max_sorted[place] = mine;
  }

  // A value <= the k-th largest of the row (-inf when k > kClusterBlocks * kWarps): the
  // ceil(k / 8)-th largest warp maximum of each block names that many distinct tokens at or
  // above it, so the smallest of these over the 8 blocks has >= k tokens at or above it.
  // Valid once ReduceBest(..., true) has returned.
  __device__ float LowerBoundOfKth(int32_t k) {
    if (k > kClusterBlocks * kWarps) return -INFINITY;
    const int j = (k + kClusterBlocks - 1) / kClusterBlocks - 1;
    float bound = INFINITY;
    for (int r = 0; r < kClusterBlocks; ++r) bound = fminf(bound, cluster.map_shared_rank(sh.warp_max_sorted, r)[j]);
    return bound;
  }

  __device__ int32_t BlockSumInt(int32_t v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullMask, v, offset);
    if (lane == 0) sh.warp_count[warp] = v;
    __syncthreads();
    int32_t total = 0;
    for (int w = 0; w < kWarps; ++w) total += sh.warp_count[w];
    __syncthreads();
    return total;
  }
};

// The tokens one pass of a block walks: the whole slice (index == nullptr: the position in the
// slice is the index) or the candidate pool (value[c] is the token at slice position index[c]).
struct TokenSpan {
  const float* value;
  const int32_t* index;
  int32_t count;

  __device__ int32_t Position(int32_t c) const { return index == nullptr ? c : index[c]; }
};

// This block's candidate pool: every token of the slice with key >= floor_key, in no
// particular order, when `complete`; otherwise (overflow, or no scan) unusable.
struct CandidatePool {
  float* value;
  int32_t* index;
  int32_t capacity;
  int32_t count;       // tokens gathered; > capacity: overflowed (the scan stopped counting)
  uint32_t floor_key;  // 0: no pool
  bool complete;

  // The pool when it holds every token a pass with floor `floor_key` counts, else the slice.
  __device__ TokenSpan SpanFor(uint32_t floor_key, const float* x, int32_t num_local) const {
    if (complete && floor_key >= this->floor_key) return TokenSpan{value, index, count};
    return TokenSpan{x, nullptr, num_local};
  }
};

// The key floor for a value bound (-inf: none, 0).
__device__ __forceinline__ uint32_t FloorKeyOf(float bound) { return bound == -INFINITY ? 0u : OrderedKey(bound); }

// Adds `weight` (kMass) or 1 to hist[bin] for each active lane, one shared atomic per
// distinct bin of the warp (rows concentrate in few bins, so plain atomics would serialise).
template <bool kMass>
__device__ __forceinline__ void WarpHistogramAdd(u64* hist, bool active, uint32_t bin, u64 weight) {
  const unsigned active_lanes = __ballot_sync(kFullMask, active);
  if (!active) return;
  const unsigned peers = __match_any_sync(active_lanes, bin);
  const int leader = __ffs(peers) - 1;
  u64 add;
  if constexpr (kMass) {
    // weight <= 2^40: split so that 32 halves sum within 32 bits.
    const unsigned hi = __reduce_add_sync(peers, static_cast<unsigned>(weight >> 20));
    const unsigned lo = __reduce_add_sync(peers, static_cast<unsigned>(weight & 0xfffffu));
    add = (static_cast<u64>(hi) << 20) + lo;
  } else {
    add = __popc(peers);
  }
  if ((threadIdx.x & 31) == leader) atomicAdd(&hist[bin], add);
}

struct SelectResult {
  uint32_t key;    // the selected key t
  u64 above;       // weight of keys > t (and >= lower)
  u64 target;      // the weight asked for
  u64 at_key;      // weight of keys == t
};

// The largest key t such that the weight of this row's tokens with key >= t is >= target,
// counting only tokens with key >= floor_key: the caller guarantees t >= floor_key (a proven
// lower bound, or the lower edge of the set that is selected from), so tokens below it never
// matter. `tokens` must hold every token of the block with key >= floor_key (the slice or a
// pool gathered at or below floor_key). Count: target = target_or_total. Mass: target =
// ceil(top_p * M), with M = target_or_total when non-zero (the set's whole mass, tokens below
// floor_key included), else the mass of keys >= floor_key. Digits start below the bits that floor_key
// and max_key (the row's largest key) share, so a narrow range costs fewer passes. All of the
// cluster's blocks return the same result; `pass_counter` alternates the histograms.
template <bool kMass>
__device__ SelectResult RadixSelect(RowContext& ctx, TokenSpan tokens, uint32_t floor_key, uint32_t max_key,
                                    u64 target_or_total, float top_p, float row_max, int& pass_counter) {
  RowShared& sh = ctx.sh;
  const float* x = tokens.value;
  const int32_t num_local = tokens.count;
  const int32_t num_padded = (num_local + kThreads - 1) / kThreads * kThreads;
  const int shared_bits = min(__clz(floor_key ^ max_key), 24);
  const int num_passes = (32 - shared_bits + 7) / 8;
  const int first_shift = 8 * (num_passes - 1);
  uint32_t prefix = first_shift + 8 < 32 ? max_key >> (first_shift + 8) : 0;
  u64 above = 0;
  u64 target = target_or_total;
  if (kMass && target_or_total != 0) {
    const u64 wanted = __double2ull_ru(static_cast<double>(top_p) * static_cast<double>(target_or_total));
    target = wanted < 1 ? 1 : wanted;
  }
  for (int pass = 0; pass < num_passes; ++pass) {
    const int shift = first_shift - 8 * pass;
    const bool check_prefix = shift + 8 < 32;
    u64* hist = sh.hist[pass_counter & 1];
    ++pass_counter;
    if (ctx.tid < kRadixBins) hist[ctx.tid] = 0;
    __syncthreads();
    for (int32_t j = ctx.tid; j < num_padded; j += kThreads) {
      bool active = false;
      uint32_t bin = 0;
      u64 weight = 0;
      if (j < num_local) {
        const float v = x[j];
        const uint32_t key = OrderedKey(v);
        active = key >= floor_key && (!check_prefix || (key >> (shift + 8)) == prefix);
        bin = (key >> shift) & (kRadixBins - 1);
        if (kMass && active) weight = MassWeight(v, row_max);
      }
      WarpHistogramAdd<kMass>(hist, active, bin, weight);
    }
    ctx.cluster.sync();
    if (ctx.tid < kRadixBins) {
      u64 total = 0;
      for (int r = 0; r < kClusterBlocks; ++r) total += ctx.cluster.map_shared_rank(hist, r)[ctx.tid];
      sh.hist_total[ctx.tid] = total;
    }
    __syncthreads();
    if (ctx.warp == 0) {
      // Lane l owns bins [248 - 8l, 255 - 8l]: lane 0 the highest keys.
      const int lane = ctx.lane;
      const int top_bin = kRadixBins - 1 - 8 * lane;
      u64 lane_sum = 0;
      for (int b = 0; b < 8; ++b) lane_sum += sh.hist_total[top_bin - b];
      u64 inclusive = lane_sum;
      for (int offset = 1; offset < 32; offset <<= 1) {
        const u64 other = __shfl_up_sync(kFullMask, inclusive, offset);
        if (lane >= offset) inclusive += other;
      }
      if (kMass && pass == 0 && target_or_total == 0) {
        const u64 total = __shfl_sync(kFullMask, inclusive, 31);
        const u64 wanted = __double2ull_ru(static_cast<double>(top_p) * static_cast<double>(total));
        target = wanted < 1 ? 1 : wanted;
      }
      const u64 exclusive = inclusive - lane_sum;
      if (above + exclusive < target && target <= above + inclusive) {
        u64 acc = above + exclusive;
        int chosen = top_bin - 7;
        for (int b = 0; b < 8; ++b) {
          const u64 h = sh.hist_total[top_bin - b];
          if (acc + h >= target) { chosen = top_bin - b; break; }
          acc += h;
        }
        sh.bcast_bin = chosen;
        sh.bcast_bin_weight = sh.hist_total[chosen];
        sh.bcast_above = acc;
        sh.bcast_target = target;
      }
    }
    __syncthreads();
    prefix = (prefix << 8) | sh.bcast_bin;
    above = sh.bcast_above;
    target = sh.bcast_target;
  }
  return SelectResult{prefix, above, target, sh.bcast_bin_weight};
}

// Block-wide ordered compaction step: for each chunk of kThreads slice positions (in id
// order), calls visit(j, order) for each position j whose predicate holds, `order` counting
// such positions from 0 in id order; stops after the chunk where `limit` is reached.
template <typename Pred, typename Visit>
__device__ void ForEachInIdOrder(RowContext& ctx, int32_t num_local, int32_t limit, Pred pred, Visit visit) {
  int32_t taken = 0;
  for (int32_t base = 0; base < num_local && taken < limit; base += kThreads) {
    const int32_t j = base + ctx.tid;
    const bool hit = j < num_local && pred(j);
    const unsigned ballot = __ballot_sync(kFullMask, hit);
    if (ctx.lane == 0) ctx.sh.warp_count[ctx.warp] = __popc(ballot);
    __syncthreads();
    int32_t order = taken + __popc(ballot & ((1u << ctx.lane) - 1));
    int32_t chunk_total = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < ctx.warp) order += ctx.sh.warp_count[w];
      chunk_total += ctx.sh.warp_count[w];
    }
    if (hit) visit(j, order);
    taken += chunk_total;
    __syncthreads();
  }
}

// The id of the `wanted`-th (from 1) lowest-id token of the row whose key is `key`.
__device__ int32_t LowestIdTieCutoff(RowContext& ctx, const float* x, int32_t num_local, int32_t first_token,
                                     uint32_t key, int32_t wanted) {
  RowShared& sh = ctx.sh;
  int32_t ties = 0;
  for (int32_t j = ctx.tid; j < num_local; j += kThreads) ties += OrderedKey(x[j]) == key;
  ties = ctx.BlockSumInt(ties);
  if (ctx.tid == 0) { sh.slot_ties = ties; sh.tie_found = INT_MAX; }
  ctx.cluster.sync();
  int32_t before = 0;
  for (int r = 0; r < static_cast<int>(ctx.cluster.block_rank()); ++r) before += *ctx.cluster.map_shared_rank(&sh.slot_ties, r);
  if (before < wanted && wanted <= before + ties) {
    const int32_t need = wanted - before - 1;  // 0-based order within this block
    ForEachInIdOrder(
        ctx, num_local, need + 1, [&](int32_t j) { return OrderedKey(x[j]) == key; },
        [&](int32_t j, int32_t order) {
          if (order == need) sh.tie_found = first_token + j;
        });
  }
  if (ctx.tid == 0) sh.slot_cutoff = sh.tie_found;
  ctx.cluster.sync();
  int32_t cutoff = INT_MAX;
  for (int r = 0; r < kClusterBlocks; ++r) cutoff = min(cutoff, *ctx.cluster.map_shared_rank(&sh.slot_cutoff, r));
  return cutoff;
}

// The softmax pass, after the row's max is known: this thread's float sum of exp(x - row_max)
// (v2's order: positions tid, tid + kThreads, ...) and, when `sum_mass`, the exact fixed-point
// mass of its tokens. When pool.floor_key != 0, it also gathers the tokens with key >=
// pool.floor_key into the pool (warp-aggregated slots; no consumer depends on their order) and
// marks the pool complete when they all fit.
__device__ void SoftmaxPassAndGather(RowContext& ctx, const float* x, int32_t num_local, float row_max,
                                     bool sum_mass, CandidatePool& pool, float& local_sum, u64& local_mass) {
  RowShared& sh = ctx.sh;
  if (pool.floor_key == 0) {
    // No pool: v2's plain loop (the warp-synchronous gather below keeps it from pipelining).
    for (int32_t j = ctx.tid; j < num_local; j += kThreads) {
      const float e = __expf(x[j] - row_max);
      local_sum += e;
      if (sum_mass) local_mass += __float2ull_rn(e * kMassScale);
    }
    pool.count = 0;
    pool.complete = false;
    return;
  }
  const unsigned lanes_below = (1u << ctx.lane) - 1;
  bool gathering = true;  // warp-uniform: a warp stops once the pool is full
  for (int32_t base = 0; base < num_local; base += kThreads) {
    const int32_t j = base + ctx.tid;
    const bool in_slice = j < num_local;
    const float v = in_slice ? x[j] : -INFINITY;
    if (in_slice) {
      const float e = __expf(v - row_max);
      local_sum += e;
      if (sum_mass) local_mass += __float2ull_rn(e * kMassScale);  // = MassWeight(v, row_max)
    }
    if (!gathering) continue;
    const bool hit = in_slice && OrderedKey(v) >= pool.floor_key;
    const unsigned hits = __ballot_sync(kFullMask, hit);
    if (hits == 0) continue;
    int32_t first = 0;
    if (ctx.lane == 0) first = atomicAdd(&sh.pool_count, __popc(hits));
    first = __shfl_sync(kFullMask, first, 0);
    const int32_t at = first + __popc(hits & lanes_below);
    if (hit && at < pool.capacity) {
      pool.value[at] = v;
      pool.index[at] = j;
    }
    // Overflow (pool_count now > capacity for good): the rest of this warp's hits cannot fit.
    if (first + __popc(hits) > pool.capacity) gathering = false;
  }
  __syncthreads();  // pool writes and pool_count complete
  pool.count = sh.pool_count;
  pool.complete = pool.count <= pool.capacity;
}

// Top_p's tail bound as a key floor (0: none). Over the whole row, a token of weight
// < (1 - top_p) * M / vocab is always cut: all such tokens together weigh < (1 - top_p) * M, so
// more than top_p * M lies above each. `mass_bound` <= M (the warp maxima's terms: M itself is
// not known before the pass that gathers the pool) and the factor one half leave room for
// float error; the bound is skipped where the 2^-40 rounding of up to `vocab` weights could
// eat that half (top_p within ~1e-7 of 1).
__device__ uint32_t TopPTailFloorKey(float top_p, float row_max, float mass_bound, int32_t vocab) {
  const float half_tail_mass = 0.5f * (1.f - top_p) * mass_bound;
  if (!(half_tail_mass * kMassScale >= 2.f * static_cast<float>(vocab))) return 0;
  const float tail_weight = half_tail_mass / static_cast<float>(vocab);
  return OrderedKey(row_max + logf(tail_weight));
}

// The smaller of two key floors, where 0 means "none" (not "everything").
__device__ __forceinline__ uint32_t LowerFloor(uint32_t a, uint32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return min(a, b);
}

// What the draw keeps and scores (sampler.h step 5).
struct DrawMasks {
  uint32_t lower;      // keep keys >= lower
  int32_t tie_cutoff;  // ... and at key == lower only ids <= tie_cutoff
  float min_p;         // drop exp(x - row_max) < min_p
  float row_max;
  float winnable;      // scores below this cannot win (see the caller)
  uint64_t key;        // the row's rng key
  int32_t first_token;
};

// This thread's best Gumbel-max score over its share of `tokens`. kIndexed: `tokens` is the
// pool (specialised so that the slice loop stays as tight as v2's).
template <bool kIndexed>
__device__ Best DrawFrom(TokenSpan tokens, const DrawMasks& m, int tid) {
  Best drawn{-INFINITY, INT_MAX};
  for (int32_t c = tid; c < tokens.count; c += kThreads) {
    const float v = tokens.value[c];
    if (v < m.winnable) continue;
    const uint32_t k = OrderedKey(v);
    const int32_t id = m.first_token + (kIndexed ? tokens.index[c] : c);
    if (k < m.lower || (k == m.lower && id > m.tie_cutoff)) continue;
    if (m.min_p > 0.f && __expf(v - m.row_max) < m.min_p) continue;
    drawn = Better(drawn, Best{v + GumbelNoise(m.key, static_cast<uint64_t>(id)), id});
  }
  return drawn;
}

// The draw's winner over the tokens top_p might keep is also the winner over those it does
// keep when it is kept itself (Gumbel-max: a subset that holds the argmax has the same
// argmax), and it usually is (a top_p 0.9 row draws outside its kept set about one time in
// ten). This checks it with one sum over the cluster instead of the select's radix passes:
// top_p over the whole row (mass `row_mass`, target as RadixSelect) keeps the token
// `winner_id` (processed logit `winner_logit`) iff the mass above its key is below the target,
// and at its key, with ties taken lowest id first (the select's tie cutoff), fewer ties
// precede it than the target still needs. `tokens` holds every key >= the winner's (it was
// drawn from them).
__device__ bool TopPKeeps(RowContext& ctx, TokenSpan tokens, float winner_logit, int32_t winner_id, u64 row_mass,
                          float top_p, float row_max, int32_t first_token) {
  RowShared& sh = ctx.sh;
  const uint32_t winner_key = OrderedKey(winner_logit);
  u64 above = 0, at = 0;
  int32_t ties_before = 0;
  for (int32_t c = ctx.tid; c < tokens.count; c += kThreads) {
    const float v = tokens.value[c];
    const uint32_t k = OrderedKey(v);
    if (k > winner_key) {
      above += MassWeight(v, row_max);
    } else if (k == winner_key) {
      at += MassWeight(v, row_max);
      ties_before += first_token + tokens.Position(c) < winner_id;
    }
  }
  // Exact integer sums: lanes, warps, then ranks, in any order.
  auto warp_sums = [&] {
    for (int offset = 16; offset > 0; offset >>= 1) {
      above += __shfl_down_sync(kFullMask, above, offset);
      at += __shfl_down_sync(kFullMask, at, offset);
      ties_before += __shfl_down_sync(kFullMask, ties_before, offset);
    }
  };
  warp_sums();
  if (ctx.lane == 0) { sh.warp_mass[ctx.warp] = above; sh.warp_mass_at[ctx.warp] = at; sh.warp_count[ctx.warp] = ties_before; }
  __syncthreads();
  if (ctx.warp == 0) {
    above = ctx.lane < kWarps ? sh.warp_mass[ctx.lane] : 0;
    at = ctx.lane < kWarps ? sh.warp_mass_at[ctx.lane] : 0;
    ties_before = ctx.lane < kWarps ? sh.warp_count[ctx.lane] : 0;
    warp_sums();
    if (ctx.lane == 0) { sh.slot_above = above; sh.slot_at = at; sh.slot_ties_before = ties_before; }
  }
  ctx.cluster.sync();
  above = 0;
  at = 0;
  ties_before = 0;
  for (int r = 0; r < kClusterBlocks; ++r) {
    above += *ctx.cluster.map_shared_rank(&sh.slot_above, r);
    at += *ctx.cluster.map_shared_rank(&sh.slot_at, r);
    ties_before += *ctx.cluster.map_shared_rank(&sh.slot_ties_before, r);
  }
  const u64 wanted = __double2ull_ru(static_cast<double>(top_p) * static_cast<double>(row_mass));
  const u64 target = wanted < 1 ? 1 : wanted;
  if (above >= target) return false;      // the cut lies above the winner's key
  if (above + at < target) return true;   // ... below it: every tie is kept
  const u64 tie_weight = MassWeight(winner_logit, row_max);  // > 0 here: at >= target - above > 0
  const u64 ties_needed = (target - above + tie_weight - 1) / tie_weight;
  return static_cast<u64>(ties_before) < ties_needed;
}

// grid = [num_rows * kClusterBlocks], block = [kThreads], dynamic shared memory:
//   float x[slice_len]                   this block's slice of the row, processed in place
//   then, overlaid (the penalties are done before the pool is gathered):
//     uint32 history_bits[bitmap_words]  penalties: token of the slice is in prompt + output
//     uint32 output_bits[bitmap_words]   penalties: token of the slice is in the output
//   or
//     float pool_value[pool_capacity]    the candidate pool
//     int32 pool_index[pool_capacity]
__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(kThreads, kBlocksPerSm)
    sample_rows_kernel(const SamplerArgs args, int32_t slice_len, int32_t bitmap_words, int32_t pool_capacity) {
  extern __shared__ float4 dynamic_smem[];
  __shared__ RowShared sh;
  float* x = reinterpret_cast<float*>(dynamic_smem);
  uint32_t* history_bits = reinterpret_cast<uint32_t*>(x + slice_len);
  uint32_t* output_bits = history_bits + bitmap_words;

  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int32_t row = blockIdx.x / kClusterBlocks;
  RowContext ctx{cluster, sh, static_cast<int>(threadIdx.x), static_cast<int>(threadIdx.x & 31),
                 static_cast<int>(threadIdx.x >> 5)};
  const int tid = ctx.tid;
  const int32_t vocab = args.vocab_size;
  const int32_t first_token = rank * slice_len;
  const int32_t num_local = max(0, min(slice_len, vocab - first_token));
  const int32_t max_top = args.max_top_logprobs;

  if (args.is_sampled != nullptr && args.is_sampled[row] == 0) {
    if (rank == 0) {
      if (tid == 0) { args.sampled_token_ids[row] = -1; args.sampled_logprobs[row] = 0.f; }
      if (tid < max_top) {
        args.top_token_ids[row * max_top + tid] = -1;
        args.top_logprobs[row * max_top + tid] = 0.f;
      }
    }
    return;  // the whole cluster leaves before any distributed shared memory access
  }
  if (tid == 0) { sh.top_count = 0; sh.pool_count = 0; }

  // 1. Load the slice (16-byte loads when the row start allows; slice_len % 4 == 0).
  const float* src = args.logits + static_cast<int64_t>(row) * args.logits_row_stride + first_token;
  if ((reinterpret_cast<uintptr_t>(src) & 15) == 0) {
    const int32_t num_vec = num_local / 4;
    const float4* src4 = reinterpret_cast<const float4*>(src);
    for (int32_t j = tid; j < num_vec; j += kThreads) dynamic_smem[j] = __ldg(src4 + j);
    for (int32_t j = num_vec * 4 + tid; j < num_local; j += kThreads) x[j] = __ldg(src + j);
  } else {
    for (int32_t j = tid; j < num_local; j += kThreads) x[j] = __ldg(src + j);
  }

  // 2. Penalties on the tokens of this slice that occur in the row's history.
  const int32_t history_begin = args.penalty_offsets[row], history_end = args.penalty_offsets[row + 1];
  const int32_t prompt_len = args.penalty_prompt_lens[row];
  const float repetition = args.repetition_penalty[row];
  const float presence = args.presence_penalty[row], frequency = args.frequency_penalty[row];
  if (history_end > history_begin && (repetition != 1.f || presence != 0.f || frequency != 0.f)) {
    for (int32_t w = tid; w < bitmap_words; w += kThreads) { history_bits[w] = 0; output_bits[w] = 0; }
    __syncthreads();
    for (int32_t i = history_begin + tid; i < history_end; i += kThreads) {
      const int32_t j = args.penalty_tokens[i] - first_token;
      if (j < 0 || j >= num_local) continue;
      atomicOr(&history_bits[j >> 5], 1u << (j & 31));
      if (i - history_begin >= prompt_len) atomicOr(&output_bits[j >> 5], 1u << (j & 31));
    }
    __syncthreads();
    // The thread that clears a token's history bit owns that token: repetition + presence once.
    for (int32_t i = history_begin + tid; i < history_end; i += kThreads) {
      const int32_t j = args.penalty_tokens[i] - first_token;
      if (j < 0 || j >= num_local) continue;
      const uint32_t bit = 1u << (j & 31);
      if ((atomicAnd(&history_bits[j >> 5], ~bit) & bit) == 0) continue;
      float v = x[j];
      if (repetition != 1.f) v = v > 0.f ? __fdiv_rn(v, repetition) : v * repetition;
      if (output_bits[j >> 5] & bit) v -= presence;
      x[j] = v;
    }
    __syncthreads();
    // Frequency: one subtraction per output occurrence (the same operation whatever the order).
    if (frequency != 0.f) {
      for (int32_t i = history_begin + prompt_len + tid; i < history_end; i += kThreads) {
        const int32_t j = args.penalty_tokens[i] - first_token;
        if (j >= 0 && j < num_local) atomicAdd(&x[j], -frequency);
      }
    }
  }
  __syncthreads();  // also: the bitmaps are dead from here on (the pool overlays them)

  // 3. Temperature and row max / argmax (greedy: ties -> lowest id).
  const float temperature_in = args.temperature[row];
  const bool greedy = IsGreedy(temperature_in);
  const float temperature = EffectiveTemperature(temperature_in);
  Best best{-INFINITY, INT_MAX};
  for (int32_t j = tid; j < num_local; j += kThreads) {
    float v = x[j];
    if (temperature != 1.f) { v = __fdiv_rn(v, temperature); x[j] = v; }
    best = Better(best, Best{v, first_token + j});
  }
  const Best row_best = ctx.ReduceBest(best, 0, /*publish_warp_maxima=*/true);
  const float row_max = row_best.value;
  const uint32_t max_key = OrderedKey(row_max);

  // 4. Which selects this row runs and the key floor of each (all known from the max and the
  // warp maxima); the softmax pass then gathers the pool at the lowest of them.
  const int32_t top_k = args.top_k[row];
  const float top_p = args.top_p[row];
  const bool top_k_active = !greedy && top_k > 0 && top_k < vocab;
  const bool top_p_active = !greedy && top_p < 1.f;
  const bool top_p_over_row = top_p_active && !top_k_active;  // needs the row's exact mass
  const int32_t num_top = min(min(max(args.num_logprobs[row], 0), max_top), vocab);
  const uint32_t top_k_floor = top_k_active ? FloorKeyOf(ctx.LowerBoundOfKth(top_k)) : 0u;
  const uint32_t tail_floor =
      top_p_over_row ? TopPTailFloorKey(top_p, row_max, ctx.MassLowerBound(row_max), vocab) : 0u;
  const uint32_t top_n_floor = num_top > 0 ? FloorKeyOf(ctx.LowerBoundOfKth(num_top)) : 0u;
  // Every token the draw can keep has key >= the top_k floor (top_p then selects within the
  // top_k set) or, without top_k, >= top_p's tail floor.
  const uint32_t draw_floor = top_k_active ? top_k_floor : tail_floor;
  CandidatePool pool{x + slice_len, reinterpret_cast<int32_t*>(x + slice_len + pool_capacity), pool_capacity,
                     0, LowerFloor(draw_floor, top_n_floor), false};
  float local_sum = 0.f;
  u64 row_mass = 0;  // fixed point, as MassWeight (top_p over the whole row only)
  SoftmaxPassAndGather(ctx, x, num_local, row_max, top_p_over_row, pool, local_sum, row_mass);
  const float sum_exp = ctx.ReduceSum(local_sum, row_mass, 1);
  const float log_normalizer = row_max + logf(sum_exp);  // logprob(i) = x[i] - log_normalizer

  // 5. The draw.
  int pass_counter = 0;
  if (greedy) {
    if (rank == 0 && tid == 0) {
      args.sampled_token_ids[row] = row_best.id;
      args.sampled_logprobs[row] = row_max - log_normalizer;
    }
  } else {
    const float min_p = args.min_p[row];
    const uint64_t key = RngKey(args.rng_key_lo[row], args.rng_key_hi[row]);
    // Gumbel noise is at most -log(E_min) = 22.9 (E_min from the smallest uniform, 2^-33):
    // a token more than 23 below the score of the row's argmax (always kept) cannot win.
    const float winnable = row_max + GumbelNoise(key, static_cast<uint64_t>(row_best.id)) - kMaxGumbel;
    // Kept tokens have key >= lower: with a mask, the pool holds them all when it is complete.
    auto candidates_above = [&](uint32_t lower) {
      return lower != 0 ? pool.SpanFor(lower, x, num_local) : TokenSpan{x, nullptr, num_local};
    };
    auto draw = [&](uint32_t lower, int32_t tie_cutoff) {
      const DrawMasks masks{lower, tie_cutoff, min_p, row_max, winnable, key, first_token};
      const TokenSpan candidates = candidates_above(lower);
      const Best drawn = candidates.index != nullptr ? DrawFrom<true>(candidates, masks, tid) : DrawFrom<false>(candidates, masks, tid);
      return ctx.ReduceBest(drawn, 2);
    };
    Best winner{-INFINITY, INT_MAX};
    bool decided = false;
    if (top_p_over_row && row_mass > 0) {
      // Draw over everything above top_p's tail floor, then check that top_p keeps the winner
      // (TopPKeeps); only a row that drew outside its kept set runs the select below.
      winner = draw(tail_floor, INT_MAX);  // its value is the noisy score, not the logit
      if (winner.id == INT_MAX) {
        decided = true;  // nothing passes min_p: nor would a subset
      } else {
        // The winner's logit, from the shared memory of the block whose slice holds it.
        const int owner = winner.id / slice_len;
        const float winner_logit = *cluster.map_shared_rank(x + (winner.id - owner * slice_len), owner);
        decided = TopPKeeps(ctx, candidates_above(tail_floor), winner_logit, winner.id, row_mass, top_p, row_max,
                            first_token);
      }
    }
    if (!decided) {
      uint32_t lower = 0;  // keep keys >= lower
      if (top_k_active) {
        lower = RadixSelect<false>(ctx, pool.SpanFor(top_k_floor, x, num_local), top_k_floor, max_key,
                                   static_cast<u64>(top_k), 1.f, row_max, pass_counter)
                    .key;
      }
      int32_t tie_cutoff = INT_MAX;  // tokens at key == lower are kept only up to this id
      if (top_p_active) {
        // Over the whole row: M is the row's mass and the tail floor skips the long tail. After
        // top_k: M is the mass of the top_k set (0: measured), whose lower edge is the floor.
        const uint32_t floor_key = top_p_over_row ? tail_floor : lower;
        const u64 set_mass = top_p_over_row ? row_mass : 0;
        const SelectResult cut = RadixSelect<true>(ctx, pool.SpanFor(floor_key, x, num_local), floor_key, max_key,
                                                   set_mass, top_p, row_max, pass_counter);
        lower = cut.key;
        // Ties at the cut all weigh the same: keep, in id order, just enough of them to reach
        // the target (the CPU sampler's sorted order), not all.
        const u64 tie_weight = MassWeight(KeyToFloat(cut.key), row_max);
        if (tie_weight > 0) {
          const u64 num_ties = cut.at_key / tie_weight;
          const u64 ties_needed = (cut.target - cut.above + tie_weight - 1) / tie_weight;
          if (ties_needed < num_ties)
            tie_cutoff = LowestIdTieCutoff(ctx, x, num_local, first_token, cut.key, static_cast<int32_t>(ties_needed));
        }
      }
      winner = draw(lower, tie_cutoff);
    }
    if (winner.id == INT_MAX) winner = row_best;  // nothing kept (min_p > 1): fall back to argmax
    const int32_t j = winner.id - first_token;
    if (tid == 0 && j >= 0 && j < num_local) {  // the block that holds the winner writes it
      args.sampled_token_ids[row] = winner.id;
      args.sampled_logprobs[row] = x[j] - log_normalizer;
    }
  }

  // 6. Top-N logprobs: the N-th largest key, then every key above it and the lowest-id ties.
  if (num_top > 0) {
    const TokenSpan tokens = pool.SpanFor(top_n_floor, x, num_local);
    const uint32_t threshold = RadixSelect<false>(ctx, tokens, top_n_floor, max_key, static_cast<u64>(num_top),
                                                  1.f, row_max, pass_counter)
                                   .key;
    // threshold >= top_n_floor: `tokens` holds every key >= threshold.
    int32_t greater = 0, equal = 0;
    for (int32_t c = tid; c < tokens.count; c += kThreads) {
      const uint32_t k = OrderedKey(tokens.value[c]);
      greater += k > threshold;
      equal += k == threshold;
    }
    greater = ctx.BlockSumInt(greater);
    equal = ctx.BlockSumInt(equal);
    if (tid == 0) { sh.slot_greater = greater; sh.slot_equal = equal; }
    cluster.sync();
    int32_t total_greater = 0, equal_before = 0;
    for (int r = 0; r < kClusterBlocks; ++r) {
      total_greater += *cluster.map_shared_rank(&sh.slot_greater, r);
      if (r < rank) equal_before += *cluster.map_shared_rank(&sh.slot_equal, r);
    }
    const int32_t ties_wanted = min(max(num_top - total_greater - equal_before, 0), equal);
    float* top_value = cluster.map_shared_rank(sh.top_value, 0);
    int32_t* top_id = cluster.map_shared_rank(sh.top_id, 0);
    int32_t* top_count = cluster.map_shared_rank(&sh.top_count, 0);
    auto add_candidate = [&](float v, int32_t position) {
      const int32_t at = atomicAdd(top_count, 1);
      top_value[at] = v;
      top_id[at] = first_token + position;
    };
    // Every key above the threshold, and all of this block's ties when all are wanted (rank 0
    // orders the candidates, so gathering order does not matter).
    const bool all_ties_wanted = ties_wanted == equal;
    for (int32_t c = tid; c < tokens.count; c += kThreads) {
      const uint32_t k = OrderedKey(tokens.value[c]);
      if (k > threshold || (all_ties_wanted && k == threshold)) add_candidate(tokens.value[c], tokens.Position(c));
    }
    // Only some of this block's ties: the lowest-id ones, in id order over the slice.
    if (!all_ties_wanted) {
      ForEachInIdOrder(
          ctx, num_local, ties_wanted, [&](int32_t j) { return OrderedKey(x[j]) == threshold; },
          [&](int32_t j, int32_t order) {
            if (order < ties_wanted) add_candidate(x[j], j);
          });
    }
    cluster.sync();
    if (rank == 0 && ctx.warp == 0) {
      // Exactly num_top candidates: each lane ranks one by counting those that beat it.
      if (ctx.lane < num_top) {
        const float v = sh.top_value[ctx.lane];
        const int32_t id = sh.top_id[ctx.lane];
        int32_t place = 0;
        for (int c = 0; c < num_top; ++c) place += RanksBefore(sh.top_value[c], sh.top_id[c], v, id);
        args.top_token_ids[row * max_top + place] = id;
        args.top_logprobs[row * max_top + place] = v - log_normalizer;
      }
    }
  }
  if (rank == 0) {
    for (int32_t c = num_top + tid; c < max_top; c += kThreads) {
      args.top_token_ids[row * max_top + c] = -1;
      args.top_logprobs[row * max_top + c] = 0.f;
    }
  }
  cluster.sync();  // no block leaves while another may still read its shared memory
}

int32_t SliceLength(int32_t vocab_size) {
  const int32_t per_block = (vocab_size + kClusterBlocks - 1) / kClusterBlocks;
  return (per_block + 3) / 4 * 4;  // float4-aligned slices
}

void Check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("sampler: ") + what + ": " + cudaGetErrorString(err));
}

struct SmemPlan {
  size_t dynamic_bytes;
  int32_t pool_capacity;  // candidate pool entries per block (0: every select walks the slice)
};

// Dynamic shared memory: the slice, then the penalty bitmaps overlaid with the candidate pool.
// The pool takes what is left of this SM's shared memory at kBlocksPerSm blocks (so it never
// costs occupancy), at least the bitmaps' bytes, at most kMaxPoolTokens entries or the slice's length.
SmemPlan PlanSharedMemory(int32_t slice_len, int32_t bitmap_words) {
  int device = 0, smem_per_sm = 0, reserved_per_block = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  Check(cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device),
        "reading the shared memory per SM");
  Check(cudaDeviceGetAttribute(&reserved_per_block, cudaDevAttrReservedSharedMemoryPerBlock, device),
        "reading the reserved shared memory per block");
  cudaFuncAttributes attributes{};
  Check(cudaFuncGetAttributes(&attributes, sample_rows_kernel), "reading the kernel's attributes");
  constexpr size_t kPoolEntryBytes = sizeof(float) + sizeof(int32_t);
  const size_t slice_bytes = sizeof(float) * static_cast<size_t>(slice_len);
  const size_t bitmap_bytes = 2 * sizeof(uint32_t) * static_cast<size_t>(bitmap_words);
  const size_t per_block = static_cast<size_t>(smem_per_sm) / kBlocksPerSm;
  const size_t fixed = slice_bytes + static_cast<size_t>(reserved_per_block) + attributes.sharedSizeBytes;
  const size_t spare = per_block > fixed ? per_block - fixed : 0;
  const size_t pool_bytes = std::max(spare, bitmap_bytes);
  // A pool never holds more than the slice.
  const size_t most = std::min<size_t>(kMaxPoolTokens, static_cast<size_t>(slice_len));
  const int32_t capacity = static_cast<int32_t>(std::min(pool_bytes / kPoolEntryBytes, most));
  return SmemPlan{slice_bytes + std::max(bitmap_bytes, kPoolEntryBytes * static_cast<size_t>(capacity)), capacity};
}

}  // namespace

size_t SamplerWorkspaceBytes(int32_t /*max_rows*/, int32_t /*vocab_size*/) { return 0; }

void SampleBatch(const SamplerArgs& args, cudaStream_t stream) {
  if (args.num_rows == 0) return;
  if (args.num_rows < 0 || args.vocab_size <= 0 || args.vocab_size > kSamplerMaxVocab)
    throw std::runtime_error("sampler: vocab_size must be in [1, " + std::to_string(kSamplerMaxVocab) + "]");
  if (args.max_top_logprobs < 0 || args.max_top_logprobs > kMaxTopLogprobs)
    throw std::runtime_error("sampler: max_top_logprobs out of range");
  if (args.logits_row_stride < args.vocab_size) throw std::runtime_error("sampler: logits_row_stride < vocab_size");
  if (!args.logits || !args.temperature || !args.top_k || !args.top_p || !args.min_p || !args.presence_penalty ||
      !args.frequency_penalty || !args.repetition_penalty || !args.rng_key_lo || !args.rng_key_hi ||
      !args.num_logprobs || !args.penalty_offsets || !args.penalty_prompt_lens || !args.sampled_token_ids ||
      !args.sampled_logprobs || (args.max_top_logprobs > 0 && (!args.top_token_ids || !args.top_logprobs)))
    throw std::runtime_error("sampler: a required device pointer is null");
  const int32_t slice_len = SliceLength(args.vocab_size);
  const int32_t bitmap_words = (slice_len + 31) / 32;
  const SmemPlan plan = PlanSharedMemory(slice_len, bitmap_words);
  Check(cudaFuncSetAttribute(sample_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(plan.dynamic_bytes)),
        "raising the shared-memory limit");
  // All of L1 as shared memory: the plan counts on kBlocksPerSm blocks' worth of it per SM,
  // and the kernel reads global memory once (streaming), so it needs no L1 cache.
  Check(cudaFuncSetAttribute(sample_rows_kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared),
        "setting the shared-memory carveout");
  sample_rows_kernel<<<args.num_rows * kClusterBlocks, kThreads, plan.dynamic_bytes, stream>>>(
      args, slice_len, bitmap_words, plan.pool_capacity);
  Check(cudaGetLastError(), "launching sample_rows_kernel");
}

}  // namespace cuda
}  // namespace spindle
