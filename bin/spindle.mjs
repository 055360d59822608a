#!/usr/bin/env node
// The `spindle` command: runs src/cli.ts through tsx (the project ships TypeScript sources).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
