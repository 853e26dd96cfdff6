#!/usr/bin/env node
// Reelay runs its TypeScript directly (Node's type stripping), which needs Node >= 22.18.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`Reelay needs Node.js 22.18 or newer; this is ${process.version}.\n`);
  process.exit(2);
}
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
