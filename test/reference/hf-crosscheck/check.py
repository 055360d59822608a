"""Step 2 of the reference cross-check (see write.ts): transformers' logits vs the float64 reference's."""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

BOUND = 1e-5  # HF float64 still computes RoPE tables and RMSNorm in float32

root = sys.argv[1]
tokens = json.load(open(os.path.join(root, "tokens.json")))
ids = torch.tensor([tokens])
print("transformers", transformers.__version__, "torch", torch.__version__)
worst = 0.0
for name in ["llama3", "qwen2", "qwen3", "mistral_bf16", "llama_f16"]:
    d = os.path.join(root, name)
    ref = np.fromfile(os.path.join(d, "ref_logits.f64"), dtype=np.float64).reshape(len(tokens), -1)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float64, attn_implementation="eager").eval()
    with torch.no_grad():
        hf = model(ids).logits[0].double().numpy()
    err = np.linalg.norm(hf - ref) / np.linalg.norm(ref)
    worst = max(worst, err)
    print(f"{name}: {type(model).__name__} rel. error vs the float64 reference {err:.3e}")
sys.exit(0 if worst <= BOUND else 1)
