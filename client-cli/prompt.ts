/**
 * Asking the person at the keyboard. Every question can be answered by an environment variable
 * instead (for scripts and tests); with no terminal and no variable the prompt fails at once
 * with PromptUnavailableError rather than waiting on a stdin that will never answer.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { PasswordMismatchError, PromptUnavailableError } from './errors.js';

/** The questions a command may ask. Injected into `run()` so commands are testable without a TTY. */
export interface Prompter {
  /** A secret, read without echo: `env[envVar]` when set, else the terminal. */
  secret(label: string, envVar?: string): Promise<string>;
  /** A new secret: `env[envVar]` when set, else asked twice on the terminal and compared. */
  newSecret(label: string, envVar?: string): Promise<string>;
  /** Yes/no on the terminal; without one, false (destructive commands then need `--yes`). */
  confirm(question: string): Promise<boolean>;
}

export interface TerminalPrompterOptions {
  env: Readonly<Record<string, string | undefined>>;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
}

/** Prompter on the process's terminal (stdin for input, stderr for the questions, so stdout stays data). */
export function terminalPrompter(opts: TerminalPrompterOptions): Prompter {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stderr;
  const interactive = (): boolean => Boolean(input.isTTY);

  const ask = (question: string, hidden: boolean): Promise<string> =>
    new Promise((resolveAnswer, reject) => {
      let muted = false;
      // Echo goes through this stream; while muted, typed characters are swallowed.
      const echo = new Writable({
        write(chunk, _enc, done) {
          if (!muted) output.write(chunk);
          done();
        },
      });
      const rl = createInterface({ input, output: echo, terminal: true });
      let answered = false;
      rl.on('SIGINT', () => {
        rl.close();
        output.write('\n');
        reject(new PromptUnavailableError(question.replace(/:\s*$/, ''), undefined));
      });
      rl.on('close', () => {
        if (!answered) reject(new PromptUnavailableError(question.replace(/:\s*$/, ''), undefined));
      });
      rl.question(question, (answer) => {
        answered = true;
        if (hidden) output.write('\n');
        rl.close();
        resolveAnswer(answer);
      });
      muted = hidden;
    });

  const fromEnv = (envVar?: string): string | undefined => {
    const v = envVar ? opts.env[envVar] : undefined;
    return v === undefined || v === '' ? undefined : v;
  };

  return {
    async secret(label, envVar) {
      const v = fromEnv(envVar);
      if (v !== undefined) return v;
      if (!interactive()) throw new PromptUnavailableError(label, envVar);
      return ask(`${label}: `, true);
    },
    async newSecret(label, envVar) {
      const v = fromEnv(envVar);
      if (v !== undefined) return v;
      if (!interactive()) throw new PromptUnavailableError(label, envVar);
      const first = await ask(`${label}: `, true);
      if (first === '') throw new PasswordMismatchError(`${label} must not be empty`);
      const second = await ask(`${label} (again): `, true);
      if (first !== second) throw new PasswordMismatchError();
      return first;
    },
    async confirm(question) {
      if (!interactive()) return false;
      const answer = await ask(`${question} [y/N] `, false);
      return /^y(es)?$/i.test(answer.trim());
    },
  };
}
