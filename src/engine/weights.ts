/**
 * Locates a model's tensors in its safetensors files by reading only the headers (8-byte
 * little-endian length + JSON); the data stays on disk for the native side to memory-map.
 * Every tensor the executor needs is checked here (dtype, shape, bounds, byte length) so a
 * bad file fails with a message naming the file and the tensor, not inside native code.
 */
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile } from './json-file.ts';
import type { NativeModelConfig, NativeTensorSource } from './native.ts';

export type TensorDType = NativeTensorSource['dtype'];

export const DTYPE_BYTES: Record<TensorDType, number> = { F32: 4, BF16: 2, F16: 2 };

/** safetensors' own limit on the JSON header (100 MB); anything larger is corrupt. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One header entry, as written in the file (dtype not yet checked against what we support). */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  byteOffset: number;
  byteLength: number;
}

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

const indexSchema = z.object({ weight_map: z.record(z.string(), z.string()) }).loose();

/** Reads and checks the header of one .safetensors file; never reads tensor data. */
export async function readSafetensorsHeader(file: string): Promise<Map<string, SafetensorsEntry>> {
  const fileBytes = (await stat(file)).size;
  if (fileBytes < 8) throw new Error(`${file}: too short for a safetensors file (${fileBytes} bytes)`);
  const handle = await open(file, 'r');
  let headerText: string;
  let headerBytes: number;
  try {
    const lengthBuf = Buffer.alloc(8);
    await handle.read(lengthBuf, 0, 8, 0);
    const declared = lengthBuf.readBigUInt64LE(0);
    if (declared === 0n || declared > BigInt(MAX_HEADER_BYTES) || declared > BigInt(fileBytes - 8)) {
      throw new Error(`${file}: corrupt safetensors header: declared header length ${declared} bytes, file is ${fileBytes} bytes`);
    }
    headerBytes = Number(declared);
    const headerBuf = Buffer.alloc(headerBytes);
    await handle.read(headerBuf, 0, headerBytes, 8);
    headerText = headerBuf.toString('utf8');
  } finally {
    await handle.close();
  }
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (err) {
    throw new Error(`${file}: corrupt safetensors header: invalid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${file}: corrupt safetensors header: not a JSON object`);
  }
  const dataStart = 8 + headerBytes;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    const parsed = entrySchema.safeParse(value);
    if (!parsed.success) {
      throw new Error(`${file}: tensor '${name}': malformed header entry (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
    }
    const { dtype, shape, data_offsets: [begin, end] } = parsed.data;
    if (end < begin) throw new Error(`${file}: tensor '${name}': data_offsets [${begin}, ${end}] run backwards`);
    if (dataStart + end > fileBytes) {
      throw new Error(`${file}: tensor '${name}': data ends at byte ${dataStart + end} but the file has ${fileBytes} bytes (truncated file?)`);
    }
    entries.set(name, { name, dtype, shape, byteOffset: dataStart + begin, byteLength: end - begin });
  }
  return entries;
}

/** Every tensor the executor reads for `config`, with its expected shape (torch layout). */
export function requiredTensorShapes(config: NativeModelConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: inter, headDim: hd, numHeads, numKvHeads, vocabSize } = config;
  const qDim = numHeads * hd;
  const kvDim = numKvHeads * hd;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [vocabSize, h]);
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [qDim, h]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kvDim, h]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kvDim, h]);
    if (config.attentionBias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [qDim]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kvDim]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kvDim]);
    }
    if (config.qkNorm) {
      shapes.set(`${p}.self_attn.q_norm.weight`, [hd]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [hd]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, qDim]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [inter, h]);
    shapes.set(`${p}.mlp.up_proj.weight`, [inter, h]);
    shapes.set(`${p}.mlp.down_proj.weight`, [h, inter]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocabSize, h]);
  return shapes;
}

/** Which file holds each tensor: the single model.safetensors, or the shard index's map. */
async function tensorFiles(dir: string): Promise<{ fileOf: (name: string) => string | undefined; describe: string }> {
  const single = path.join(dir, 'model.safetensors');
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (existsSync(indexFile)) {
    const map = (await readJsonFile(indexFile, indexSchema)).weight_map;
    // Shards live beside the index: a name with a directory part is corrupt (or hostile).
    for (const [tensor, shard] of Object.entries(map)) {
      if (path.basename(shard) !== shard || shard === '..' || shard === '.') {
        throw new Error(`${indexFile}: tensor '${tensor}': shard '${shard}' is not a file name in the model directory`);
      }
    }
    return {
      fileOf: (name) => (Object.hasOwn(map, name) ? path.join(dir, map[name]) : undefined),
      describe: indexFile,
    };
  }
  if (existsSync(single)) return { fileOf: () => single, describe: single };
  throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json (only safetensors weights are supported)`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Finds and checks every tensor `config` needs in the safetensors files of `dir`.
 * Returns them in requiredTensorShapes order.
 */
export async function locateTensors(dir: string, config: NativeModelConfig): Promise<NativeTensorSource[]> {
  const absDir = path.resolve(dir);
  const { fileOf, describe } = await tensorFiles(absDir);
  const headers = new Map<string, Map<string, SafetensorsEntry>>();
  const headerOf = async (file: string, tensor: string): Promise<Map<string, SafetensorsEntry>> => {
    let header = headers.get(file);
    if (!header) {
      if (!existsSync(file)) throw new Error(`${file}: shard named in ${describe} for tensor '${tensor}' does not exist`);
      header = await readSafetensorsHeader(file);
      headers.set(file, header);
    }
    return header;
  };

  const sources: NativeTensorSource[] = [];
  for (const [name, expectedShape] of requiredTensorShapes(config)) {
    const file = fileOf(name);
    if (file === undefined) throw new Error(`${describe}: missing tensor '${name}' (expected shape [${expectedShape}])`);
    const entry = (await headerOf(file, name)).get(name);
    if (!entry) throw new Error(`${file}: missing tensor '${name}' (expected shape [${expectedShape}])`);
    if (!(entry.dtype in DTYPE_BYTES)) {
      throw new Error(`${file}: tensor '${name}': dtype ${entry.dtype} is not supported (F32, BF16, F16)`);
    }
    const dtype = entry.dtype as TensorDType;
    if (!sameShape(entry.shape, expectedShape)) {
      throw new Error(`${file}: tensor '${name}': shape [${entry.shape}], expected [${expectedShape}]`);
    }
    const expectedBytes = expectedShape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (entry.byteLength !== expectedBytes) {
      throw new Error(`${file}: tensor '${name}': ${entry.byteLength} data bytes, expected ${expectedBytes} for ${dtype} [${expectedShape}]`);
    }
    sources.push({ name, file, dtype, shape: entry.shape, byteOffset: entry.byteOffset, byteLength: entry.byteLength });
  }
  return sources;
}
