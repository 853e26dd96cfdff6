/**
 * The `reelay` command as a person runs it, against a test context's database: a child process,
 * its exit code and both streams. The CLI gets the context's key and its own data dir, never the
 * developer's environment beyond PATH and friends.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from './context.ts';

export const BIN = fileURLToPath(new URL('../../bin/reelay.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runReelay(ctx: TestContext, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: {
        ...process.env,
        DATABASE_URL: ctx.databaseUrl,
        REELAY_SECRET_KEY: readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim(),
        REELAY_DATA_DIR: join(ctx.dir, 'cli-data'),
        LOG_LEVEL: 'silent',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
