"""Hugging Face transformers reference for the CUDA backend's whole-model checks.

Builds two small random models with transformers (Llama-3-style with llama3 rope scaling and
GQA; Qwen3-style with q/k norm and head_dim 128), saves them as safetensors, and for each
model (plus the real tiny stories260K-hf) and dtype (float32, bfloat16) writes:
  <out>/<case>.json        prompts, greedy continuations (32 tokens), HF's top-5 ids and
                           log-probs at every generated step, teacher-forced sequences
  <out>/<case>.logits.f32  teacher-forced logits [sum of sequence lengths, vocab], float32
and <out>/manifest.json listing the cases. test/gpu/hf-parity.test.ts runs Spindle's CUDA
executor on the same model dirs and compares.

Usage: python3 test/gpu/hf_reference.py OUT_DIR [SHARED_DIR]
"""
import inspect
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

NUM_PROMPTS = 64
NUM_NEW_TOKENS = 32
NUM_TEACHER = 8
TOP_N = 5


def scale_random_weights(model: torch.nn.Module, seed: int) -> None:
    """Re-draws every weight so that activations stay O(1) and the logits are peaked: HF's
    default init (std 0.02) gives near-uniform next-token distributions, where greedy
    decoding is decided by rounding noise and tells nothing."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * (torch.rand(p.shape, generator=g) * 2 - 1))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[1]
                gain = 4.0 if name.startswith("lm_head") else 1.0
                p.copy_(gain * torch.randn(p.shape, generator=g) / fan_in**0.5)


def llama3_rope_kwargs() -> dict:
    """Llama 3.1 rope scaling, in whichever form this transformers takes (5.x: rope_parameters).
    A small original length, so that the scaling changes the angles at these positions."""
    params = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}
    if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters:
        return {"rope_parameters": {**params, "rope_theta": 500000.0}}
    return {"rope_scaling": params, "rope_theta": 500000.0}


def build_models(out: str) -> dict:
    dirs = {}
    llama_dir = os.path.join(out, "llama3-tiny")
    llama_cfg = LlamaConfig(
        vocab_size=1024, hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        **llama3_rope_kwargs(),
    )
    torch.manual_seed(1)
    model = LlamaForCausalLM(llama_cfg)
    rope_type = getattr(model.model.rotary_emb, "rope_type", None)
    print(f"hf_reference: llama3-tiny rotary embedding type '{rope_type}'", flush=True)
    scale_random_weights(model, 11)
    model.save_pretrained(llama_dir)
    dirs["llama3-tiny"] = llama_dir

    qwen_dir = os.path.join(out, "qwen3-tiny")
    qwen_cfg = Qwen3Config(
        vocab_size=1024, hidden_size=256, intermediate_size=768, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=128, max_position_embeddings=4096,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(2)
    model = Qwen3ForCausalLM(qwen_cfg)
    scale_random_weights(model, 22)
    model.save_pretrained(qwen_dir)
    dirs["qwen3-tiny"] = qwen_dir
    return dirs


@torch.no_grad()
def greedy(model, prompt: list, device) -> tuple:
    """Greedy continuation of one prompt with HF's KV cache; HF's top-N at every step."""
    ids = torch.tensor([prompt], device=device)
    out = model(ids, use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1].float()
    tokens, top_ids, top_lps = [], [], []
    for _ in range(NUM_NEW_TOKENS):
        lp = torch.log_softmax(logits, dim=-1)
        best = lp.topk(TOP_N)
        tok = int(torch.argmax(logits))
        tokens.append(tok)
        top_ids.append([int(i) for i in best.indices])
        top_lps.append([float(v) for v in best.values])
        out = model(torch.tensor([[tok]], device=device), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1].float()
    return tokens, top_ids, top_lps


def run_case(name: str, model_dir: str, dtype_name: str, out: str, device) -> dict:
    dtype = torch.float32 if dtype_name == "float32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1234)
    prompts = []
    for _ in range(NUM_PROMPTS):
        n = int(torch.randint(4, 41, (1,), generator=g))
        prompts.append([int(t) for t in torch.randint(3, vocab, (n,), generator=g)])
    greedy_tokens, top_ids, top_lps = [], [], []
    for p in prompts:
        t, i, v = greedy(model, p, device)
        greedy_tokens.append(t)
        top_ids.append(i)
        top_lps.append(v)
    teacher = [prompts[k] + greedy_tokens[k] for k in range(NUM_TEACHER)]
    rows = []
    with torch.no_grad():
        for seq in teacher:
            rows.append(model(torch.tensor([seq], device=device)).logits[0].float().cpu())
    logits = torch.cat(rows, dim=0).contiguous()
    case = f"{name}-{dtype_name}"
    logits.numpy().tofile(os.path.join(out, f"{case}.logits.f32"))
    with open(os.path.join(out, f"{case}.json"), "w") as f:
        json.dump({"case": case, "modelDir": model_dir, "dtype": dtype_name, "vocabSize": vocab,
                   "prompts": prompts, "greedy": greedy_tokens, "topIds": top_ids, "topLogprobs": top_lps,
                   "teacher": teacher, "logitsFile": f"{case}.logits.f32"}, f)
    del model
    torch.cuda.empty_cache()
    return {"case": case, "file": f"{case}.json"}


def main() -> None:
    out = os.path.abspath(sys.argv[1])
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../../shared")
    os.makedirs(out, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 on both sides
    torch.backends.cudnn.allow_tf32 = False
    dirs = build_models(out)
    stories = os.path.abspath(os.path.join(shared, "models/stories260K-hf"))
    if os.path.isdir(stories):
        dirs["stories260K"] = stories
    cases = []
    for name, d in dirs.items():
        for dtype_name in ("float32", "bfloat16"):
            cases.append(run_case(name, d, dtype_name, out, device))
            print(f"hf_reference: {cases[-1]['case']} done", flush=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"transformers": __import__("transformers").__version__, "torch": torch.__version__,
                   "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                   "cases": cases}, f)


if __name__ == "__main__":
    main()
