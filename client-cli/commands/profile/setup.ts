/**
 * `sigil setup --server URL --ca FILE`: creates the profile, pinning the appliance's CA.
 * Touches no network: the server insists on a client certificate, which does not exist yet.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { InputFileError, ProfileExistsError, UsageError } from '../../errors.js';
import { withHelp } from '../../help.js';
import type { Runtime } from '../../runtime.js';

export interface SetupOptions {
  server: string;
  ca: string;
  force?: boolean;
}

export function setupCommand(ctx: CommandContext): Command {
  const cmd = new Command('setup')
    .summary('create the profile: server URL and pinned CA')
    .description(
      'Create the profile: the appliance URL and the CA certificate that every server certificate must chain to. ' +
        'Compare the printed fingerprint with the one your security officer gives you.',
    )
    .addOption(new Option('--server <url>', 'appliance URL, https://HOST:PORT').makeOptionMandatory())
    .addOption(new Option('--ca <file>', 'CA certificate PEM of the appliance (from the officer)').makeOptionMandatory())
    .option('--force', 'replace the server and CA of an existing profile (keys and certificate are kept; a changed CA is named)')
    .option('--json', 'print the result as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    examples: ['sigil setup --server https://10.1.0.5:8443 --ca ./sigil-ca.pem', 'sigil --profile ./alee setup --server https://127.0.0.1:8443 --ca ca.pem'],
  });
}

/** The PEM certificate blocks of a text, in order. */
const certificateBlocks = (text: string): string[] => text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];

/** Reads and checks every certificate in a CA file; returns their PEM and the first one parsed. */
async function readCaFile(file: string): Promise<{ pem: string; certs: X509Certificate[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputFileError(file, 'a readable file', { cause });
  }
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) throw new InputFileError(file, 'a PEM CA certificate');
  const certs = blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (cause) {
      throw new InputFileError(file, 'a PEM CA certificate', { cause });
    }
  });
  if (!certs.every((c) => c.ca)) throw new InputFileError(file, 'a CA certificate (basicConstraints cA is not set)');
  return { pem: blocks.join('\n') + '\n', certs };
}

export async function run(opts: SetupOptions, rt: Runtime): Promise<void> {
  let url: URL;
  try {
    url = new URL(opts.server);
  } catch {
    throw new UsageError(`--server: "${opts.server}" is not a URL; expected https://HOST:PORT`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`--server: expected an https:// URL, got ${url.protocol}//`);
  const ca = await readCaFile(opts.ca);
  const existing = await rt.profile.has('config');
  if (existing && !opts.force) throw new ProfileExistsError(rt.profile.dir);
  const previous = existing ? await rt.profile.config().catch(() => undefined) : undefined;
  const replaced = existing ? pinnedChange(await rt.profile.readOptional('ca').catch(() => undefined), ca.certs) : undefined;
  await rt.profile.write('ca', ca.pem);
  await rt.profile.writeConfig({ version: 1, server: url.origin, login: previous?.login });
  // A session belongs to the old server; it means nothing to the new one. A root CRL kept from the
  // old pin (messaging/kept-root-crl.ts) would only be ignored with a warning at every run.
  if (existing) await rt.profile.remove('session');
  if (replaced) await rt.profile.remove('rootCrl');
  const result = {
    profile: rt.profile.dir,
    server: url.origin,
    ca: ca.certs.map((c) => ({ subject: c.subject.replace(/\n/g, ', '), sha256: c.fingerprint256, notAfter: new Date(c.validTo).toISOString() })),
  };
  if (rt.json) return rt.out.json(replaced ? { ...result, replacedCa: replaced } : result);
  rt.out.fields([
    ['profile', result.profile],
    ['server', result.server],
    ...result.ca.flatMap((c): [string, string][] => [
      ['ca', c.subject],
      ['sha256', c.sha256],
      ['expires', c.notAfter],
    ]),
  ]);
  if (replaced) {
    // Silent before: a certificate and audit checkpoint of the old appliance then failed later, unexplained.
    rt.out.note(
      `the pinned CA changed (was sha256 ${replaced.map((c) => c.sha256).join(', ')}); a certificate issued under the old one ` +
        'no longer chains (import one from this appliance: sigil cert import FILE), and a saved audit checkpoint of another appliance will not match its trail',
    );
  }
}

/** The fingerprints of the pinned CA being replaced, when the new pin shares no certificate with it; else undefined. */
function pinnedChange(oldPem: string | undefined, next: readonly X509Certificate[]): { sha256: string }[] | undefined {
  const blocks = certificateBlocks(oldPem ?? '');
  const old: { sha256: string }[] = [];
  for (const b of blocks) {
    try {
      old.push({ sha256: new X509Certificate(b).fingerprint256 });
    } catch {
      // An unreadable old pin is replaced all the same; it named nothing to compare.
    }
  }
  // The same root pinned with or without its issuing CA is no change: only a pin sharing nothing is.
  const kept = old.some((c) => next.some((n) => n.fingerprint256 === c.sha256));
  return old.length > 0 && !kept ? old : undefined;
}
