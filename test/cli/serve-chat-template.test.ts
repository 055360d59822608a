// `spindle serve` checks the model's chat template at start-up: one that does not parse stops
// the server before it serves (naming tokenizer_config.json), one that is absent does not, and
// chat requests then get the 400 that points to /v1/completions.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realEngineSkipReason, writeTinyChatModel, type RealModel } from '../server/real-model.ts';
import { runCli, startServingCli, type ServingCli } from './cli-process.ts';

const skipReason = realEngineSkipReason();
if (skipReason) console.warn(`skipping the chat template start-up tests: ${skipReason}`);

const models: RealModel[] = [];
let serving: ServingCli | undefined;

afterAll(() => {
  if (serving && serving.child.exitCode === null) serving.child.kill('SIGKILL');
  for (const model of models) model.remove();
});

/** The tiny model with its tokenizer_config.json's chat_template replaced (undefined: removed). */
function modelWithChatTemplate(chatTemplate: string | undefined): { dir: string; configFile: string } {
  const model = writeTinyChatModel();
  models.push(model);
  const configFile = path.join(model.dir, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(configFile, JSON.stringify({ ...config, chat_template: chatTemplate }));
  return { dir: model.dir, configFile };
}

const SERVE_ARGS = ['--host', '127.0.0.1', '--port', '0', '--device', 'cpu', '--detokenizer-workers', '1'];

describe.skipIf(skipReason !== '')('spindle serve and the chat template', () => {
  it('does not start when the chat template does not parse', async () => {
    const { dir, configFile } = modelWithChatTemplate('{% for m in messages %}{{ m.content }}{% endif %}');
    const run = await runCli(['serve', dir, ...SERVE_ARGS], 30_000);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).not.toContain('serving at');
    expect(run.stderr).toContain(configFile);
    expect(run.stderr).toContain('Unknown statement type: endif');
  });

  it('starts without a chat template; chat requests get a 400', async () => {
    const { dir } = modelWithChatTemplate(undefined);
    serving = await startServingCli([dir, ...SERVE_ARGS], 60_000);
    const response = await fetch(`${serving.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('chat_template_missing');
    expect(body.error.message).toContain('/v1/completions');
    serving.child.kill('SIGTERM');
    expect(await serving.exited).toBe(0);
  });
});
