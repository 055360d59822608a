// Piscina's worker entry. Node 20 does not apply loader hooks given to a worker through
// `execArgv: ['--import', 'tsx/esm']` (checked: the worker still fails on .ts), so the worker
// registers tsx's ESM hooks on its own thread before importing the TypeScript handler. The specifier
// is resolved from this file, so it works from any cwd, under vitest and under `tsx`.
import { register } from 'tsx/esm/api';

register();
const handler = await import('./worker.ts');

export default handler.default;
