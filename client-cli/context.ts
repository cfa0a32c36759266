/**
 * Glue between commander builders and `run()` functions: a builder only declares flags, and
 * hands commander an action made here, which builds the Runtime from the global flags.
 */
import type { Command } from 'commander';
import { Runtime, type GlobalOptions, type Io } from './runtime.js';

export interface CommandContext {
  /** The I/O the commands run with (the real process in main.ts). */
  io: Io;
}

/** The Runtime for the command being run, from its own and its ancestors' options. */
export function runtimeFor(ctx: CommandContext, cmd: Command): Runtime {
  const all = cmd.optsWithGlobals<GlobalOptions>();
  return new Runtime(ctx.io, { profile: all.profile, json: all.json });
}

/**
 * A commander action for a command without positional arguments:
 * `run(options, runtime)`.
 */
export function action<O>(ctx: CommandContext, run: (opts: O, rt: Runtime) => Promise<void>) {
  return async (opts: O, cmd: Command): Promise<void> => run(opts, runtimeFor(ctx, cmd));
}

/**
 * A commander action for a command with one positional argument, passed into the options
 * under `key`: `run({...options, [key]: arg}, runtime)`.
 */
export function action1<O, K extends string>(
  ctx: CommandContext,
  key: K,
  run: (opts: O & Record<K, string>, rt: Runtime) => Promise<void>,
) {
  return async (arg: string, opts: O, cmd: Command): Promise<void> =>
    run({ ...opts, [key]: arg } as O & Record<K, string>, runtimeFor(ctx, cmd));
}
