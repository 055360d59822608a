/**
 * An independent float64 forward pass of Llama / Mistral / Qwen2 / Qwen3 with Hugging Face
 * semantics, used to check the native executor. Written to be obviously correct, not fast:
 * one token at a time with a plain per-layer KV cache, plain loops, no shared code with the
 * engine (it reads config.json and the safetensors files itself).
 *
 * HF semantics followed: RMSNorm x * rsqrt(mean(x^2) + eps) * w; rotate_half RoPE (pairs i and
 * i + headDim/2); llama3 frequency scaling; GQA (query head h reads kv head h / (H / KV));
 * Qwen2 q/k/v bias; Qwen3 RMSNorm over each head of q and k before RoPE; SiLU-gated MLP;
 * lm_head = embed_tokens when tie_word_embeddings.
 * Itself checked against transformers 5.17 on five architectures (hf-crosscheck/): 1.4e-7.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ReferenceConfig {
  family: 'llama' | 'qwen2' | 'qwen3';
  hidden: number;
  intermediate: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  theta: number;
  llama3: { factor: number; low: number; high: number; originalMax: number } | null;
  tied: boolean;
}

/** config.json → ReferenceConfig, with HF's defaults, read independently of model-config.ts. */
export function readReferenceConfig(dir: string): ReferenceConfig {
  const c = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const num = (key: string, fallback?: number): number => {
    const v = c[key];
    if (typeof v === 'number') return v;
    if (fallback !== undefined) return fallback;
    throw new Error(`reference: config.json has no ${key}`);
  };
  const arch = (c.architectures as string[])[0];
  const family = arch === 'Qwen2ForCausalLM' ? 'qwen2' : arch === 'Qwen3ForCausalLM' ? 'qwen3' : 'llama';
  const scaling = c.rope_scaling as Record<string, number | string> | null | undefined;
  const numHeads = num('num_attention_heads');
  return {
    family,
    hidden: num('hidden_size'),
    intermediate: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numHeads,
    numKvHeads: num('num_key_value_heads', numHeads),
    headDim: num('head_dim', num('hidden_size') / numHeads),
    vocab: num('vocab_size'),
    eps: num('rms_norm_eps', 1e-6),
    theta: num('rope_theta', 10000),
    llama3:
      scaling && (scaling.rope_type ?? scaling.type) === 'llama3'
        ? {
            factor: Number(scaling.factor),
            low: Number(scaling.low_freq_factor),
            high: Number(scaling.high_freq_factor),
            originalMax: Number(scaling.original_max_position_embeddings),
          }
        : null,
    tied: c.tie_word_embeddings === true,
  };
}

function decodeHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Every tensor of the model's safetensors file(s), decoded to float64. */
export function readReferenceTensors(dir: string): Map<string, Float64Array> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const files = existsSync(indexFile)
    ? [...new Set(Object.values((JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> }).weight_map))]
    : ['model.safetensors'];
  const tensors = new Map<string, Float64Array>();
  for (const file of files) {
    const bytes = readFileSync(path.join(dir, file));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const start = 8 + headerLength + entry.data_offsets[0];
      const end = 8 + headerLength + entry.data_offsets[1];
      const size = entry.dtype === 'F32' ? 4 : 2;
      const out = new Float64Array((end - start) / size);
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < out.length; i++) {
        const at = start + i * size;
        if (entry.dtype === 'F32') out[i] = bytes.readFloatLE(at);
        else if (entry.dtype === 'F16') out[i] = decodeHalf(bytes.readUInt16LE(at));
        else if (entry.dtype === 'BF16') {
          scratch.setUint32(0, bytes.readUInt16LE(at) << 16);
          out[i] = scratch.getFloat32(0);
        } else throw new Error(`reference: dtype ${entry.dtype}`);
      }
      tensors.set(name, out);
    }
  }
  return tensors;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let sumSq = 0;
  for (const v of x) sumSq += v * v;
  const inv = 1 / Math.sqrt(sumSq / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}

/** y = W x (+ b), W row-major [rows, x.length]. */
function matVec(w: Float64Array, x: Float64Array, bias?: Float64Array): Float64Array {
  const rows = w.length / x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = bias ? bias[r] : 0;
    const base = r * x.length;
    for (let c = 0; c < x.length; c++) acc += w[base + c] * x[c];
    y[r] = acc;
  }
  return y;
}

/** HF's default inverse frequencies, then llama3 scaling (_compute_llama3_parameters). */
export function inverseFrequencies(cfg: ReferenceConfig): Float64Array {
  const half = cfg.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / cfg.theta ** ((2 * i) / cfg.headDim);
    const s = cfg.llama3;
    if (s) {
      const wavelen = (2 * Math.PI) / f;
      const lowWavelen = s.originalMax / s.low;
      const highWavelen = s.originalMax / s.high;
      if (wavelen > lowWavelen) f = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMax / wavelen - s.low) / (s.high - s.low);
        f = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
    inv[i] = f;
  }
  return inv;
}

/** rotate_half RoPE of each head of `v` ([numHeads * headDim]) at `pos`, in place. */
function rope(v: Float64Array, numHeads: number, headDim: number, pos: number, inv: Float64Array): void {
  const half = headDim / 2;
  for (let h = 0; h < numHeads; h++) {
    for (let i = 0; i < half; i++) {
      const a = pos * inv[i];
      const x1 = v[h * headDim + i];
      const x2 = v[h * headDim + i + half];
      v[h * headDim + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
      v[h * headDim + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
    }
  }
}

function headNorm(v: Float64Array, numHeads: number, headDim: number, w: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let h = 0; h < numHeads; h++) out.set(rmsNorm(v.subarray(h * headDim, (h + 1) * headDim), w, eps), h * headDim);
  return out;
}

export class ReferenceModel {
  readonly cfg: ReferenceConfig;
  private readonly w: Map<string, Float64Array>;
  private readonly invFreq: Float64Array;

  /** `overrides` exist to prove a test can fail (e.g. drop the RoPE scaling on purpose). */
  constructor(dir: string, overrides: Partial<ReferenceConfig> = {}) {
    this.cfg = { ...readReferenceConfig(dir), ...overrides };
    this.w = readReferenceTensors(dir);
    this.invFreq = inverseFrequencies(this.cfg);
  }

  private t(name: string): Float64Array {
    const v = this.w.get(name);
    if (!v) throw new Error(`reference: missing tensor ${name}`);
    return v;
  }

  /** A fresh sequence: feed it tokens one at a time (positions 0, 1, ...). */
  session(): ReferenceSession {
    return new ReferenceSession(this.cfg, (name) => this.t(name), this.invFreq);
  }

  /** Logits (float64) after each token of `tokens`, the sequence starting at position 0. */
  logits(tokens: number[]): Float64Array[] {
    const session = this.session();
    return tokens.map((token) => session.step(token));
  }

  /** Greedy continuation: `numNew` argmax tokens after `prompt`. */
  greedy(prompt: number[], numNew: number): number[] {
    const session = this.session();
    let last: Float64Array = new Float64Array(0);
    for (const token of prompt) last = session.step(token);
    const generated: number[] = [];
    for (let i = 0; i < numNew; i++) {
      let best = 0;
      for (let j = 1; j < last.length; j++) if (last[j] > last[best]) best = j;
      generated.push(best);
      if (i + 1 < numNew) last = session.step(best);
    }
    return generated;
  }
}

/** One sequence's KV cache over a ReferenceModel's weights. */
export class ReferenceSession {
  private readonly keys: Float64Array[][];
  private readonly values: Float64Array[][];
  private pos = 0;

  constructor(
    private readonly cfg: ReferenceConfig,
    private readonly t: (name: string) => Float64Array,
    private readonly invFreq: Float64Array,
  ) {
    this.keys = Array.from({ length: cfg.numLayers }, () => []);
    this.values = Array.from({ length: cfg.numLayers }, () => []);
  }

  /** Runs `token` at the next position; returns its logits. */
  step(token: number): Float64Array {
    const { hidden, numHeads, numKvHeads, headDim, numLayers, eps, family } = this.cfg;
    const groupSize = numHeads / numKvHeads;
    const pos = this.pos++;
    let x = Float64Array.from(this.t('model.embed_tokens.weight').subarray(token * hidden, (token + 1) * hidden));
    for (let l = 0; l < numLayers; l++) {
      const p = `model.layers.${l}`;
      const h = rmsNorm(x, this.t(`${p}.input_layernorm.weight`), eps);
      const bias = (n: string): Float64Array | undefined => (family === 'qwen2' ? this.t(`${p}.self_attn.${n}_proj.bias`) : undefined);
      let q = matVec(this.t(`${p}.self_attn.q_proj.weight`), h, bias('q'));
      let k = matVec(this.t(`${p}.self_attn.k_proj.weight`), h, bias('k'));
      const v = matVec(this.t(`${p}.self_attn.v_proj.weight`), h, bias('v'));
      if (family === 'qwen3') {
        q = headNorm(q, numHeads, headDim, this.t(`${p}.self_attn.q_norm.weight`), eps);
        k = headNorm(k, numKvHeads, headDim, this.t(`${p}.self_attn.k_norm.weight`), eps);
      }
      rope(q, numHeads, headDim, pos, this.invFreq);
      rope(k, numKvHeads, headDim, pos, this.invFreq);
      this.keys[l].push(k);
      this.values[l].push(v);
      const attn = new Float64Array(numHeads * headDim);
      for (let head = 0; head < numHeads; head++) {
        const kvHead = Math.floor(head / groupSize);
        const scores = this.keys[l].map((key) => {
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[head * headDim + i] * key[kvHead * headDim + i];
          return dot / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((a, b) => a + b, 0);
        weights.forEach((wt, j) => {
          for (let i = 0; i < headDim; i++) attn[head * headDim + i] += (wt / total) * this.values[l][j][kvHead * headDim + i];
        });
      }
      const attnOut = matVec(this.t(`${p}.self_attn.o_proj.weight`), attn);
      x = x.map((xv, i) => xv + attnOut[i]);
      const h2 = rmsNorm(x, this.t(`${p}.post_attention_layernorm.weight`), eps);
      const gate = matVec(this.t(`${p}.mlp.gate_proj.weight`), h2);
      const up = matVec(this.t(`${p}.mlp.up_proj.weight`), h2);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matVec(this.t(`${p}.mlp.down_proj.weight`), act);
      x = x.map((xv, i) => xv + down[i]);
    }
    const final = rmsNorm(x, this.t('model.norm.weight'), eps);
    return matVec(this.t(this.cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), final);
  }
}
