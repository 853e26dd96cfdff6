/**
 * No Docker engine runs here, so the deployment files are checked as data: the compose file
 * against the config schema and the CLI, the Dockerfile against the essentials (and hadolint when
 * it is installed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildProgram } from '../cli/main.ts';
import { ENV_SCHEMA } from '../core/config.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: unknown;
  environment?: Record<string, string | number | null> | string[];
  env_file?: string | string[] | Array<{ path: string }>;
  restart?: string;
  healthcheck?: { test?: string[] | string; interval?: string };
  volumes?: string[];
  ports?: string[];
  container_name?: string;
  depends_on?: Record<string, { condition?: string }> | string[];
  deploy?: unknown;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const dockerfile = read('Dockerfile');
const schemaNames = new Set(Object.keys(ENV_SCHEMA.shape));

function service(name: string): Service {
  const found = compose.services[name];
  assert.ok(found, `compose has a ${name} service`);
  return found;
}

function environmentNames(env: Service['environment']): string[] {
  if (!env) return [];
  return Array.isArray(env) ? env.map((entry) => entry.split('=')[0]!) : Object.keys(env);
}

function commandOf(s: Service): string[] {
  assert.ok(Array.isArray(s.command), 'command is an exec-form array');
  return s.command;
}

test('compose: postgres with a named volume and a healthcheck', () => {
  const postgres = service('postgres');
  assert.match(postgres.image ?? '', /^postgres:15(\b|-)/, 'Postgres 15, the major version of the image\'s pg_dump');
  const volume = postgres.volumes?.find((v) => v.endsWith(':/var/lib/postgresql/data'));
  assert.ok(volume, 'the data directory is on a volume');
  const name = volume.split(':')[0]!;
  assert.ok(!name.startsWith('.') && !name.startsWith('/'), 'a named volume, not a bind mount');
  assert.ok(compose.volumes && name in compose.volumes, `volume ${name} is declared`);
  assert.ok(postgres.healthcheck?.test, 'postgres has a healthcheck');
  assert.ok(postgres.restart);
});

test('compose: bot and worker share one image, differ by command, and can be scaled', () => {
  const bot = service('bot');
  const worker = service('worker');
  assert.ok(bot.build && bot.image, 'bot builds the image');
  assert.deepEqual(worker.build, bot.build);
  assert.equal(worker.image, bot.image);
  assert.notDeepEqual(commandOf(bot), commandOf(worker));

  // The commands are real CLI commands (the image's entrypoint is bin/reelay.js).
  assert.match(dockerfile, /^ENTRYPOINT \["node", ("--[a-z-]+=\d+", )*"bin\/reelay\.js"\]$/m);
  const program = buildProgram(() => undefined);
  for (const s of [bot, worker]) {
    const [name, ...flags] = commandOf(s);
    const command = program.commands.find((c) => c.name() === name);
    assert.ok(command, `reelay ${name} exists`);
    for (const flag of flags) assert.ok(command.options.some((o) => o.long === flag), `reelay ${name} takes ${flag}`);
  }

  for (const [name, s] of [['bot', bot], ['worker', worker]] as const) {
    const envFiles = [s.env_file ?? []].flat().map((f) => (typeof f === 'string' ? f : f.path));
    assert.ok(envFiles.includes('.env'), `${name} reads .env`);
    assert.ok(['always', 'unless-stopped', 'on-failure'].includes(s.restart ?? ''), `${name} restarts`);
    const condition = !Array.isArray(s.depends_on) ? s.depends_on?.postgres?.condition : undefined;
    assert.equal(condition, 'service_healthy', `${name} waits for a healthy postgres`);
    const check = s.healthcheck?.test;
    assert.ok(Array.isArray(check) && check[0] === 'CMD', `${name} has an exec-form healthcheck`);
    assert.ok(existsSync(join(ROOT, check[2] ?? '')), `${check[2]} is in the repository`);
    const env = s.environment as Record<string, string>;
    assert.equal(check[3], `http://127.0.0.1:${env.HTTP_PORT}/healthz`, `${name}'s healthcheck asks its own HTTP port`);
    assert.equal(new URL(env.DATABASE_URL!.replace('${POSTGRES_PASSWORD:-reelay}', 'x')).hostname, 'postgres');
  }
  // `--scale worker=N`: no fixed name, no published port, no replica count pinned.
  assert.equal(worker.container_name, undefined);
  assert.equal(worker.ports, undefined);
  assert.equal(worker.deploy, undefined);
});

test('compose: every variable it sets for Reelay is in the config schema', () => {
  for (const name of ['bot', 'worker']) {
    for (const variable of environmentNames(service(name).environment)) assert.ok(schemaNames.has(variable), `${name} sets ${variable}, unknown to core/config.ts`);
  }
  for (const match of dockerfile.matchAll(/^ENV\s+([\s\S]*?)(?<!\\)\n/gm)) {
    for (const pair of match[1]!.split(/\\\n|\s+/).filter((p) => p.includes('='))) {
      const variable = pair.split('=')[0]!;
      assert.ok(schemaNames.has(variable), `the Dockerfile sets ${variable}, unknown to core/config.ts`);
    }
  }
});

/** Top-level folders reachable by static imports from the CLI: the image needs each of them. */
function runtimeFolders(): Set<string> {
  const folders = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    folders.add(relative(ROOT, file).split('/')[0]!);
    for (const match of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s(?:[^'";]*?\sfrom\s)?'(\.{1,2}\/[^']+)'/gm)) {
      visit(resolve(dirname(file), match[1]!));
    }
  };
  visit(join(ROOT, 'cli/main.ts'));
  return folders;
}

test('Dockerfile: Node 22 slim, Debian ffmpeg, production dependencies, non-root, healthcheck', () => {
  assert.match(dockerfile, /^FROM node:22[\w.-]*-slim\b/m, 'a Node 22 slim base');
  assert.match(dockerfile, /apt-get install[^\n]*(\\\n[^\n]*)*\bffmpeg\b/, "Debian's ffmpeg");
  assert.match(dockerfile, /apt-get install[^\n]*(\\\n[^\n]*)*\bpostgresql-client\b/, 'pg_dump/pg_restore for reelay backup');
  assert.match(dockerfile, /rm -rf \/var\/lib\/apt\/lists/, 'no apt lists left in the layer');
  assert.match(dockerfile, /^RUN npm ci --omit=dev\b/m, 'production dependencies only, from the lockfile');
  assert.match(dockerfile, /^COPY package\.json package-lock\.json/m);
  const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
  assert.ok(users.length > 0 && !['root', '0'].includes(users.at(-1)!), 'runs as a non-root user');
  assert.ok(/^HEALTHCHECK /m.test(dockerfile) || service('bot').healthcheck, 'a healthcheck');
  const copied = new Set([...dockerfile.matchAll(/^COPY\s+(\S+)\s/gm)].map((m) => m[1]!.replace(/\/$/, '')));
  for (const folder of runtimeFolders()) assert.ok(copied.has(folder), `the image copies ${folder}/, which the CLI imports`);
  assert.ok(copied.has('migrations') && copied.has('bin'));

  const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
  for (const path of ['.env', 'node_modules', '.reelay', '.git']) assert.ok(ignored.includes(path), `.dockerignore keeps ${path} out of the build context`);
});

test('Dockerfile: hadolint, when installed', (t) => {
  const probe = spawnSync('hadolint', ['--version'], { encoding: 'utf8' });
  if (probe.error) return t.skip('hadolint is not installed');
  const lint = spawnSync('hadolint', ['--failure-threshold', 'warning', join(ROOT, 'Dockerfile')], { encoding: 'utf8' });
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);
});
