/**
 * Entry point of `check` (compiled to dist/hardening/check.js; hardening/check is its launcher).
 */
import { checkMain } from './check-cli.js';

// `check | head` closes the pipe early; that is the reader's choice, not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

process.exitCode = await checkMain(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
