// The chat template is parsed once, when tokenizer_config.json is read at start-up: a template
// that does not parse fails there (naming the file), and requests only render the parsed template.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readChatTemplate } from '../../src/engine/tokenizer-config.ts';
import { renderChatPrompt } from '../../src/server/chat-template.ts';
import { ApiError } from '../../src/server/errors.ts';

// Counts every Template the code under test constructs (each one is a parse).
const parses = vi.hoisted(() => ({ count: 0 }));
vi.mock('@huggingface/jinja', async (importOriginal) => {
  const jinja = await importOriginal<typeof import('@huggingface/jinja')>();
  class CountingTemplate extends jinja.Template {
    constructor(source: string) {
      parses.count++;
      super(source);
    }
  }
  return { ...jinja, Template: CountingTemplate };
});

const GOOD_TEMPLATE = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tokenizerDir(config: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-chat-template-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

describe('the chat template of tokenizer_config.json', () => {
  it('fails to load when it does not parse, naming the file and the parse error', async () => {
    const dir = tokenizerDir({ chat_template: '{% for m in messages %}{{ m.content }}{% endif %}', bos_token: '<s>', eos_token: '</s>' });
    const loading = readChatTemplate(dir);
    await expect(loading).rejects.toThrow(path.join(dir, 'tokenizer_config.json'));
    await expect(loading).rejects.toThrow(/chat_template.*Unknown statement type: endif/);
  });

  it('checks the template a list of named templates uses (the default)', async () => {
    const dir = tokenizerDir({ chat_template: [{ name: 'tool_use', template: GOOD_TEMPLATE }, { name: 'default', template: '{{ messages | }}' }] });
    await expect(readChatTemplate(dir)).rejects.toThrow(/tokenizer_config\.json.*chat_template/);
  });

  it('renders the tool_use template of named templates when tools are given, the default otherwise', async () => {
    const toolUse = "{% for t in tools %}[{{ t.function.name }}]{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}";
    // (A template text of its own: parses are cached by text, and another test counts them.)
    const dir = tokenizerDir({ chat_template: [{ name: 'default', template: `${GOOD_TEMPLATE}{# default #}` }, { name: 'tool_use', template: toolUse }], bos_token: '<s>' });
    const engine = { modelName: 'm', chatTemplate: await readChatTemplate(dir) };
    const messages = [{ role: 'user' as const, content: 'hi' }];
    expect(renderChatPrompt(engine, messages, true)).toBe('<s><user>hi<assistant>');
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: null, parameters: null } }];
    expect(renderChatPrompt(engine, messages, true, { tools })).toBe('[get_weather]hi');
  });

  it('comes from chat_template.jinja when the model has one (as transformers writes it), with tokenizer_config.json\'s tokens', async () => {
    const dir = tokenizerDir({ chat_template: '{{ "old" }}', bos_token: '<s>', eos_token: '</s>' });
    writeFileSync(path.join(dir, 'chat_template.jinja'), `${GOOD_TEMPLATE}{# file #}`);
    const engine = { modelName: 'm', chatTemplate: await readChatTemplate(dir) };
    expect(renderChatPrompt(engine, [{ role: 'user', content: 'hi' }], false)).toBe('<s><user>hi');
    writeFileSync(path.join(dir, 'chat_template.jinja'), '{% if %}');
    await expect(readChatTemplate(dir)).rejects.toThrow(path.join(dir, 'chat_template.jinja'));
  });

  it('hands replayed tool calls to the template with their arguments as objects, and tool results with their call id', () => {
    const template =
      '{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}call {{ c.id }} {{ c.function.name }}{{ c.function.arguments | tojson }} {% endfor %}' +
      '{% elif m.role == "tool" %}result {{ m.tool_call_id }}: {{ m.content }} {% else %}{{ m.content }} {% endif %}{% endfor %}';
    const engine = { modelName: 'm', chatTemplate: { template, bosToken: '', eosToken: '' } };
    const messages = [
      { role: 'user' as const, content: 'weather?' },
      { role: 'assistant' as const, content: null, tool_calls: [{ id: 'c1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }, { id: 'c2', function: { name: 'now', arguments: '' } }] },
      { role: 'tool' as const, content: '18C', tool_call_id: 'c1' },
    ];
    expect(renderChatPrompt(engine, messages, false)).toBe('weather? call c1 get_weather{"city": "Paris"} call c2 now{} result c1: 18C ');
    const broken = [{ role: 'assistant' as const, content: null, tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{not json' } }] }];
    expect(() => renderChatPrompt(engine, broken, false)).toThrow(/messages\[0\]\.tool_calls\[0\]\.function\.arguments is not valid JSON/);
  });

  it('is replaced by --chat-template, a file or the template itself; a path that does not exist is an error', async () => {
    const dir = tokenizerDir({ bos_token: '<s>' }); // a model without a template of its own
    const file = path.join(dir, 'mine.jinja');
    writeFileSync(file, `${GOOD_TEMPLATE}{# from a file #}`);
    const fromFile = { modelName: 'm', chatTemplate: await readChatTemplate(dir, file) };
    expect(renderChatPrompt(fromFile, [{ role: 'user', content: 'hi' }], true)).toBe('<s><user>hi<assistant>');
    const literal = { modelName: 'm', chatTemplate: await readChatTemplate(dir, '{% for m in messages %}[{{ m.content }}]{% endfor %}') };
    expect(renderChatPrompt(literal, [{ role: 'user', content: 'hi' }], false)).toBe('[hi]');
    await expect(readChatTemplate(dir, path.join(dir, 'missing.jinja'))).rejects.toThrow(/--chat-template: '.*missing\.jinja' is neither a file nor a Jinja template/);
    await expect(readChatTemplate(dir, '{% if %}')).rejects.toThrow(/--chat-template: the template is not a valid Jinja template/);
  });

  it('is parsed once, when read: requests only render it', async () => {
    const dir = tokenizerDir({ chat_template: GOOD_TEMPLATE, bos_token: '<s>', eos_token: '</s>' });
    parses.count = 0;
    const chatTemplate = await readChatTemplate(dir);
    expect(parses.count).toBe(1);
    const engine = { modelName: 'm', chatTemplate };
    for (let i = 0; i < 3; i++) {
      expect(renderChatPrompt(engine, [{ role: 'user', content: `hi ${i}` }], true)).toBe(`<s><user>hi ${i}<assistant>`);
    }
    expect(parses.count).toBe(1);
  });

  it('may be absent: chat requests then get a 400 that points to /v1/completions', async () => {
    const chatTemplate = await readChatTemplate(tokenizerDir({ bos_token: '<s>', eos_token: '</s>' }));
    expect(chatTemplate).toBeNull();
    let error: unknown;
    try {
      renderChatPrompt({ modelName: 'm', chatTemplate }, [{ role: 'user', content: 'hi' }], true);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, code: 'chat_template_missing' });
    expect((error as ApiError).message).toContain('/v1/completions');
  });

  describe('continue_final_message, as transformers cuts the render', () => {
    const engineWith = (template: string) => ({ modelName: 'm', chatTemplate: { template, bosToken: '<s>', eosToken: '</s>' } });
    const conversation = (last: string) => [{ role: 'user' as const, content: 'hi' }, { role: 'assistant' as const, content: last }];

    it('keeps the final message\'s spacing where the template keeps it', () => {
      const engine = engineWith('{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}');
      expect(renderChatPrompt(engine, conversation('Once upon '), false, { continueFinalMessage: true })).toBe('<user>hi</user><assistant>Once upon ');
    });

    it('cuts after the trimmed message where the template trims it (Llama 3 does)', () => {
      const engine = engineWith('{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}<|eot_id|>{% endfor %}');
      expect(renderChatPrompt(engine, conversation('  Once upon \n'), false, { continueFinalMessage: true })).toBe('<user>hi<|eot_id|><assistant>Once upon');
    });

    it('refuses (400) a template that drops the final message', () => {
      const engine = engineWith("{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}");
      expect(() => renderChatPrompt(engine, conversation('Once upon'), false, { continueFinalMessage: true })).toThrow(
        expect.objectContaining({ status: 400, param: 'messages', message: expect.stringContaining('final message does not appear') }),
      );
    });
  });
});
