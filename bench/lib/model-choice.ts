/**
 * The benchmarks' model choice: --model DIR (a Hugging Face directory) or --load-format dummy
 * --preset NAME (the shapes of a real model, random weights), shared by the throughput and
 * serving benchmarks' option schemas.
 */
import { z } from 'zod';

export const modelChoiceFields = {
  /** A Hugging Face model directory; or loadFormat 'dummy' with preset. */
  model: z.string().optional(),
  loadFormat: z.enum(['auto', 'dummy']).default('auto'),
  preset: z.string().optional(),
};

/** Adds an issue unless the options name a model; `orElse` lists another way (e.g. --base-url). */
export function checkModelChoice(o: { model?: string; loadFormat: 'auto' | 'dummy'; preset?: string }, ctx: z.RefinementCtx, orElse = ''): void {
  if (o.loadFormat === 'dummy' && !o.preset) {
    ctx.addIssue({ code: 'custom', path: ['preset'], message: '--load-format dummy needs --preset (llama-3.1-8b, llama-2-13b, qwen3-8b, tiny)' });
  }
  if (o.loadFormat === 'auto' && !o.model) {
    ctx.addIssue({ code: 'custom', path: ['model'], message: `give --model DIR, or --load-format dummy --preset NAME${orElse}` });
  }
}
