#!/usr/bin/env node
/**
 * `sigil`, the binary: wires the real process (stdin/stdout/stderr, environment, clock) into the
 * command tree, runs it, and turns any failure into one line on stderr and an exit code
 * (`exit-codes.ts`). The cause chain is printed only with SIGIL_DEBUG=1.
 */
import { CommanderError } from 'commander';
import { ServerError } from './errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { allCommands, buildProgram } from './program.js';
import { terminalPrompter } from './prompt.js';
import { oneLine } from './terminal-text.js';
import type { Io } from './runtime.js';

/** The error line: one line, control characters escaped, as a message may quote a file name, input or the server. */
function describe(err: unknown): string {
  const text = err instanceof ServerError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
  return oneLine(text);
}

function causeChain(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    lines.push(`${depth === 0 ? '' : 'caused by: '}${e instanceof Error ? (e.stack ?? e.message) : String(e)}${code ? ` [${String(code)}]` : ''}`);
  }
  return lines.join('\n');
}

/**
 * Ids are base64url and may begin with '-' (Sigil no longer makes such ids, but older ones and
 * other clients' do), and a message text may too: commander then reads the word as an option.
 * Its one-line error says how to pass it: after '--', which ends the options.
 */
export function withDashHint(message: string): string {
  const m = /^error: unknown option '(-[^-'][^']+)'\n?$/.exec(message);
  if (!m) return message;
  return `error: unknown option '${m[1]}' (an id or a text that begins with '-' goes after '--', which ends the options: … -- ${m[1]})\n`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  const program = buildProgram({ io });
  // On every command: a subcommand keeps the output settings it was created with.
  for (const cmd of allCommands(program)) {
    cmd.configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      outputError: (s, write) => write(withDashHint(s)),
    });
  }
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its one-line message (or the help).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      return EXIT.usage;
    }
    io.stderr.write(`error: ${describe(err)}\n`);
    if (io.env.SIGIL_DEBUG === '1') io.stderr.write(causeChain(err) + '\n');
    return exitCodeFor(err);
  }
}

const io: Io = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  prompter: terminalPrompter({ env: process.env }),
  now: () => new Date(),
  stderrIsTTY: Boolean(process.stderr.isTTY),
};

// A reader that goes away (`sigil --help | head`) is not a failure: stop quietly, never a stack
// trace. Any other failure to write (a full disk behind `> file`, a closed terminal) is: one line
// on stderr while it can still be written, and exit 1, never an uncaught exception.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    if (stream === process.stdout) process.stderr.write(`error: cannot write the output (${oneLine(err.code ?? err.message)})\n`);
    process.exit(EXIT.failure);
  });
}

main(process.argv, io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${describe(err)}\n`);
    process.exitCode = EXIT.failure;
  },
);
