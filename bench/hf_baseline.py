#!/usr/bin/env python3
"""The throughput benchmark's peer: the same requests through Hugging Face transformers on the
same GPU, with the same model shapes and random bf16 weights (built from a config, no download).

Input: the requests file bench/throughput.ts writes (--requests-out): prompt token ids, output
lengths and the model's shape, so both engines run identical inputs. EOS is disabled, as in
Spindle's run (ignoreEos), so every request generates exactly its output length.

Two ways to run them, several configurations each; the best is reported:
  cb      continuous batching (model.continuous_batching_context_manager, then add_request with
          each request's own max_new_tokens), paged attention ('paged|sdpa'; flash-attn is not
          installed there). Knobs: ContinuousBatchingConfig (max_batch_tokens, num_blocks,
          max_memory_percent, use_cuda_graph, use_async_batching, default_compile_level...).
          The configurations are swept on the first --sweep-num-prompts requests, then the
          fastest runs again on all of them.
  static  model.generate over left-padded batches; a batch runs until its longest output and
          only each request's own output length counts as useful tokens. --static-order
          'given' batches in the selection's order (as vLLM's HF baseline does); 'sorted'
          groups requests of similar output length, an oracle no real server has.

Usage (on the GPU machine; the README's throughput section runs it after bench/throughput.ts):
  python3 bench/hf_baseline.py --requests .bench-out/requests.json --out $OUT/hf.json \
      [--num-prompts 1000] [--modes cb,static] [--sweep-num-prompts 200] [--deadline-s 420]
The result JSON is rewritten after every run, so a run cut short still leaves its figures.
"""
import argparse
import dataclasses
import inspect
import json
import logging
import os
import subprocess
import sys
import time
import traceback

import torch
import transformers
from transformers import AutoModelForCausalLM, GenerationConfig

# Tried in order; each a dict of ContinuousBatchingConfig fields plus "attn" (attention
# implementation). Fields the installed version lacks are dropped and listed in the output.
# Seen on an H100 (transformers 5.17, the first 200 of 1000 ShareGPT requests, Llama-3.1-8B
# shapes), output tok/s: the defaults (no graphs since sdpa needs a mask, no async) 520;
# graphs + async at 8k batch tokens ran out of memory capturing its graphs and fell back, 563;
# graphs + async at 4k batch tokens with 60% of memory for KV 1111, at 2k 1092, at 1k 1148.
# The defaults and 8k are left out of the sweep: they lose to every configuration below.
# Over all 1000 requests the 1k configuration ran at 707 output tok/s only: its graph warm-up ran
# out of memory (the KV cache took 90% of what was free; 1000 requests size bigger graph
# buffers than 200), so the sweep now starts with the same knobs leaving 30% free (not yet run).
DEFAULT_CB_CONFIGS = [
    {"name": "graphs+async, 1k batch tokens, 70% memory", "attn": "sdpa", "max_batch_tokens": 1024, "max_memory_percent": 0.7, "use_cuda_graph": True, "use_async_batching": True},
    {"name": "graphs+async, 1k batch tokens", "attn": "sdpa", "max_batch_tokens": 1024, "use_cuda_graph": True, "use_async_batching": True},
    {"name": "graphs+async, 2k batch tokens", "attn": "sdpa", "max_batch_tokens": 2048, "use_cuda_graph": True, "use_async_batching": True},
    {"name": "graphs+async, 4k batch tokens, 60% memory", "attn": "sdpa", "max_batch_tokens": 4096, "max_memory_percent": 0.6, "use_cuda_graph": True, "use_async_batching": True},
]


def build_config(model):
    """A transformers config with the shapes of the requests file's model (NativeModelConfig fields)."""
    family = model["family"]
    common = dict(
        hidden_size=model["hiddenSize"],
        intermediate_size=model["intermediateSize"],
        num_hidden_layers=model["numLayers"],
        num_attention_heads=model["numHeads"],
        num_key_value_heads=model["numKvHeads"],
        head_dim=model["headDim"],
        vocab_size=model["vocabSize"],
        max_position_embeddings=model["maxPositionEmbeddings"],
        rms_norm_eps=model["rmsNormEps"],
        tie_word_embeddings=model["tieWordEmbeddings"],
        eos_token_id=None,
        bos_token_id=None,
        pad_token_id=0,
    )
    rope = {"rope_type": "default", "rope_theta": model["ropeTheta"]}
    scaling = model.get("ropeScaling")
    if scaling:
        rope = {
            "rope_type": "llama3",
            "rope_theta": model["ropeTheta"],
            "factor": scaling["factor"],
            "low_freq_factor": scaling["lowFreqFactor"],
            "high_freq_factor": scaling["highFreqFactor"],
            "original_max_position_embeddings": scaling["originalMaxPositionEmbeddings"],
        }
    if family == "llama":
        return transformers.LlamaConfig(**common, rope_parameters=rope, attention_bias=model["attentionBias"])
    if family == "qwen2":
        return transformers.Qwen2Config(**common, rope_parameters=rope)
    if family == "qwen3":
        return transformers.Qwen3Config(**common, rope_parameters=rope)
    raise ValueError(f"unknown model family {family}")


def build_model(model_shape, attn):
    config = build_config(model_shape)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation=attn)
    model.eval()
    # random init, not zeros: zeros run faster and would flatter the peer
    probe = model.model.layers[0].mlp.up_proj.weight
    if not probe.float().std().item() > 0:
        raise RuntimeError("model weights are all zero")
    return model


def generation_config(max_new_tokens, min_new_tokens=0):
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        do_sample=False,
        eos_token_id=-1,  # never matches: EOS ignored, as in Spindle's run
        pad_token_id=0,
    )


def make_cb_config(knobs):
    """ContinuousBatchingConfig from the knobs it has; returns (config, dropped knob names)."""
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    fields = {f.name for f in dataclasses.fields(ContinuousBatchingConfig)}
    chosen = {k: v for k, v in knobs.items() if k in fields}
    dropped = sorted(k for k in knobs if k not in fields and k not in ("name", "attn"))
    return ContinuousBatchingConfig(**chosen), dropped


def accepts(fn, name):
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class WarningLog(logging.Handler):
    """Keeps the warnings transformers logs during a run: a failed graph warm-up ('Failed to warm
    up: CUDA out of memory') only shows there, and it slows the whole run down."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage().split("\n")[0][:200]
        if message not in self.messages:
            self.messages.append(message)


def run_cb(model, requests, knobs):
    warnings = WarningLog()
    cb_logger = logging.getLogger("ContinuousBatchingLogger")
    cb_logger.addHandler(warnings)
    try:
        result = run_cb_inner(model, requests, knobs)
    finally:
        cb_logger.removeHandler(warnings)
    result["warnings"] = warnings.messages
    result["warmupFailed"] = any("Failed to warm up" in m for m in warnings.messages)
    return result


def run_cb_inner(model, requests, knobs):
    cb_config, dropped = make_cb_config(knobs)
    gen = generation_config(max(r["outputLen"] for r in requests))
    started = time.perf_counter()
    cm = model.continuous_batching_context_manager(generation_config=gen, continuous_batching_config=cb_config, block=True, timeout=30)
    with cm as manager:
        warmup_s = time.perf_counter() - started
        t0 = time.perf_counter()
        add_kwargs = {"eos_token_id": -1} if accepts(manager.add_request, "eos_token_id") else {}
        for r in requests:
            manager.add_request(input_ids=r["promptTokenIds"], request_id=r["id"], max_new_tokens=r["outputLen"], **add_kwargs)
        results = {}
        while len(results) < len(requests):
            out = manager.get_result(timeout=1)
            if out is None:
                if not manager.is_running():
                    raise RuntimeError(f"generation thread stopped after {len(results)} of {len(requests)} requests")
                continue
            if out.is_finished():
                results[out.request_id] = out
        torch.cuda.synchronize()
        wall_s = time.perf_counter() - t0
        resolved = {k: getattr(manager.continuous_batching_config, k) for k in ("num_blocks", "max_batch_tokens", "block_size", "use_cuda_graph", "use_async_batching") if hasattr(manager.continuous_batching_config, k)}
    wrong = [r["id"] for r in requests if len(results[r["id"]].generated_tokens) != r["outputLen"]]
    if wrong:
        raise RuntimeError(f"{len(wrong)} requests generated a different number of tokens than asked (first: {wrong[0]})")
    return {"wallS": wall_s, "warmupS": warmup_s, "droppedKnobs": dropped, "resolvedConfig": {k: str(v) for k, v in resolved.items()}}


def run_static(model, requests, batch_size, order_name):
    """Left-padded batched generate, in the given order or grouped by output length."""
    order = sorted(requests, key=lambda r: r["outputLen"], reverse=True) if order_name == "sorted" else requests
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    # warm-up: one small batch, outside the timing
    model.generate(**pad_batch(batches[-1][:4]), generation_config=generation_config(8, 8))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for batch in batches:
        max_new = max(r["outputLen"] for r in batch)
        out = model.generate(**pad_batch(batch), generation_config=generation_config(max_new, max_new))
        if out.shape[1] - max(len(r["promptTokenIds"]) for r in batch) != max_new:
            raise RuntimeError("static generate stopped early")
    torch.cuda.synchronize()
    return {"wallS": time.perf_counter() - t0, "numBatches": len(batches)}


def pad_batch(batch):
    width = max(len(r["promptTokenIds"]) for r in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, r in enumerate(batch):
        n = len(r["promptTokenIds"])
        ids[row, width - n:] = torch.tensor(r["promptTokenIds"])
        mask[row, width - n:] = 1
    return {"input_ids": ids.cuda(), "attention_mask": mask.cuda()}


def rates(requests, wall_s):
    prompt = sum(len(r["promptTokenIds"]) for r in requests)
    output = sum(r["outputLen"] for r in requests)
    return {
        "numRequests": len(requests),
        "numPromptTokens": prompt,
        "numOutputTokens": output,
        "requestsPerS": len(requests) / wall_s,
        "outputTokensPerS": output / wall_s,
        "totalTokensPerS": (prompt + output) / wall_s,
    }


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # the GPU machine's copy of the tree has no .git; gpu-run.sh passes the commit
        return os.environ.get("SPINDLE_GIT_COMMIT")




class Results:
    """Runs one configuration at a time and rewrites the result JSON after each."""

    def __init__(self, args, spec):
        self.args = args
        self.spec = spec
        self.runs = []
        self.models = {}
        self.started = time.perf_counter()

    def out_of_time(self):
        return self.args.deadline_s is not None and time.perf_counter() - self.started > self.args.deadline_s

    def model_for(self, attn):
        if attn not in self.models:
            self.models.clear()
            torch.cuda.empty_cache()
            self.models[attn] = build_model(self.spec["model"], attn)
        return self.models[attn]

    def record(self, mode, name, knobs, subset, fn):
        entry = {"mode": mode, "name": name, "knobs": knobs, "numRequests": len(subset)}
        if self.out_of_time():
            entry["error"] = f"skipped: past --deadline-s {self.args.deadline_s}"
        else:
            try:
                entry.update(fn())
                entry.update(rates(subset, entry["wallS"]))
                print(f"[{mode}] {name}: {entry['requestsPerS']:.2f} req/s, {entry['outputTokensPerS']:.0f} output tok/s "
                      f"({entry['numRequests']} requests, {entry['wallS']:.1f} s)", flush=True)
            except Exception as err:  # a configuration the installed version refuses is a result too
                entry["error"] = f"{type(err).__name__}: {err}"
                traceback.print_exc()
        if "error" in entry:
            print(f"[{mode}] {name}: {entry['error']}", flush=True)
        entry["peakMemoryBytes"] = torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        self.runs.append(entry)
        self.write()
        return entry

    def best(self, num_requests):
        """Fastest run over all the requests (sweep runs on a subset are not comparable)."""
        ok = [r for r in self.runs if "error" not in r and r["numRequests"] == num_requests]
        return max(ok, key=lambda r: r["outputTokensPerS"]) if ok else None

    def write(self):
        result = {
            "engine": "transformers",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "deviceName": torch.cuda.get_device_name(0),
            "gitCommit": git_commit(),
            "commandLine": " ".join(sys.argv),
            "requestsFile": self.args.requests,
            "modelName": self.spec.get("modelName"),
            "model": self.spec["model"],
            "numRequests": self.args.num_requests,
            "runs": self.runs,
            "best": self.best(self.args.num_requests),
        }
        with open(self.args.out, "w") as f:
            json.dump(result, f, indent=2)

    def print_table(self):
        print("\nmode    config                                     req/s   out tok/s  total tok/s  requests")
        for r in self.runs:
            if "error" in r:
                print(f"{r['mode']:<7} {r['name'][:42]:<42} {r['error'][:70]}")
            else:
                flag = "  graph warm-up failed (out of memory)" if r.get("warmupFailed") else ""
                print(f"{r['mode']:<7} {r['name'][:42]:<42} {r['requestsPerS']:6.2f} {r['outputTokensPerS']:10.0f} {r['totalTokensPerS']:12.0f} {r['numRequests']:9d}{flag}")
        best = self.best(self.args.num_requests)
        if best:
            print(f"transformers best over all {best['numRequests']} requests: [{best['mode']}] {best['name']}: "
                  f"{best['requestsPerS']:.2f} req/s, {best['outputTokensPerS']:.0f} output tok/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", required=True, help="requests JSON written by bench/throughput.ts --requests-out")
    parser.add_argument("--out", required=True, help="result JSON to write")
    parser.add_argument("--num-prompts", type=int, default=None, help="use only the first N requests")
    parser.add_argument("--modes", default="cb,static")
    parser.add_argument("--cb-configs", default=None, help="JSON list of knob dicts (default: DEFAULT_CB_CONFIGS)")
    parser.add_argument("--sweep-num-prompts", type=int, default=200, help="sweep cb configurations on the first N, then rerun the best on all; 0 = every configuration on all")
    parser.add_argument("--static-batch-sizes", default="128")
    parser.add_argument("--static-order", default="given", choices=["given", "sorted"])
    parser.add_argument("--deadline-s", type=float, default=None, help="start no new run after this many seconds")
    args = parser.parse_args()

    with open(args.requests) as f:
        spec = json.load(f)
    requests = spec["requests"][: args.num_prompts] if args.num_prompts else spec["requests"]
    args.num_requests = len(requests)
    cb_configs = json.loads(args.cb_configs) if args.cb_configs else DEFAULT_CB_CONFIGS
    modes = args.modes.split(",")
    results = Results(args, spec)

    if "static" in modes:
        for size in (int(s) for s in args.static_batch_sizes.split(",")):
            name = f"generate, batch {size}, {args.static_order} order"
            results.record("static", name, {"batch_size": size, "order": args.static_order, "attn": "sdpa"}, requests,
                           lambda: run_static(results.model_for("sdpa"), requests, size, args.static_order))
    if "cb" in modes:
        sweep = requests[: args.sweep_num_prompts] if 0 < args.sweep_num_prompts < len(requests) else requests
        entries = []
        for knobs in cb_configs:
            attn = knobs.get("attn", "sdpa")
            entries.append(results.record("cb", knobs.get("name", json.dumps(knobs)), knobs, sweep,
                                          lambda: run_cb(results.model_for(attn), sweep, knobs)))
        ok = [e for e in entries if "error" not in e]
        if sweep is not requests and ok:
            winner = max(ok, key=lambda e: e["outputTokensPerS"])
            knobs = winner["knobs"]
            results.record("cb", f"{winner['name']} (sweep winner, all requests)", knobs, requests,
                           lambda: run_cb(results.model_for(knobs.get("attn", "sdpa")), requests, knobs))
    results.print_table()


if __name__ == "__main__":
    main()
