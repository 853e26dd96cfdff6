#!/usr/bin/env node
// The container healthcheck: GET a /healthz URL, exit 0 on 200 and 1 otherwise. A separate tiny
// script because node:22-slim has no curl and loading the whole CLI every 30 s would be wasteful.
const url = process.argv[2] ?? 'http://127.0.0.1:8080/healthz';
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = await response.text();
  if (!response.ok) process.stderr.write(`${response.status} ${body}\n`);
  process.exitCode = response.ok ? 0 : 1;
} catch (error) {
  process.stderr.write(`${url}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
