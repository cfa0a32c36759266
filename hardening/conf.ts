/**
 * `/etc/sigil/hardening.conf`: the appliance's port and LAN ranges, read by `apply` (bash) to render
 * the unit and the firewall, and here so that `check` knows what "correct" means. The file is parsed,
 * never sourced: plain `KEY=VALUE` lines, optional single or double quotes, `#` comments.
 */
import { z } from 'zod';
import { parseCidr, type Cidr } from './cidr.js';
import { HardeningConfInvalidError } from './errors.js';

/** Host path of the configuration file. */
export const HARDENING_CONF_PATH = '/etc/sigil/hardening.conf';

/** The parsed configuration. */
export interface HardeningConf {
  /** TCP port of sigil-server (`SIGIL_PORT`, default 8443, ≥ 1024: the service has no capabilities). */
  readonly port: number;
  /** Ranges allowed to reach the port (`SIGIL_LAN_RANGES`, at least one). */
  readonly lanRanges: readonly Cidr[];
  /** Ranges allowed to reach SSH (`SIGIL_ADMIN_RANGE`, default none = no SSH). */
  readonly adminRanges: readonly Cidr[];
  /** SSH port (`SIGIL_SSH_PORT`, default 22). */
  readonly sshPort: number;
  /** Master key file on removable media (`SIGIL_MASTER_KEY_FILE`), or undefined for a passphrase. */
  readonly masterKeyFile: string | undefined;
  /** Path of the node binary (`SIGIL_NODE`, default /usr/bin/node). */
  readonly node: string;
  /**
   * malloc of sigil-server (`SIGIL_ALLOCATOR`, default auto): `jemalloc` must be preloaded,
   * `glibc` must not be, `auto` is either (apply preloads jemalloc when the host has it).
   */
  readonly allocator: 'auto' | 'jemalloc' | 'glibc';
}

const cidrList = (min: number) =>
  z
    .string()
    .transform((text, ctx) => {
      const out: Cidr[] = [];
      for (const token of text.split(/\s+/).filter(Boolean)) {
        try {
          out.push(parseCidr(token));
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
          return z.NEVER;
        }
      }
      return out;
    })
    .refine((list) => list.length >= min, { message: `needs at least ${min} range` });

const port = (min: number) => z.coerce.number().int().min(min).max(65535);
const absPath = z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'expected an absolute path of [A-Za-z0-9._/-]');

const Schema = z
  .object({
    SIGIL_PORT: port(1024).default(8443),
    SIGIL_LAN_RANGES: cidrList(1),
    SIGIL_ADMIN_RANGE: cidrList(0).default([]),
    SIGIL_SSH_PORT: port(1).default(22),
    SIGIL_MASTER_KEY_FILE: z.union([z.literal(''), absPath]).default(''),
    // "yes" (node --jitless + W^X) cannot work on Node 20: --jitless drops WebAssembly, which undici
    // needs at load. Accepted only as "no", so a conf that asks for it is refused, not ignored.
    SIGIL_JITLESS: z.literal('no', { message: 'must be "no": node 20 --jitless cannot run the server' }).default('no'),
    SIGIL_NODE: absPath.default('/usr/bin/node'),
    SIGIL_ALLOCATOR: z.enum(['auto', 'jemalloc', 'glibc']).default('auto'),
  })
  .strict();

/**
 * Parses the text of a hardening.conf.
 *
 * @param where - file name for messages.
 * @throws HardeningConfInvalidError on a line that is not `KEY=VALUE`, an unknown key, or a bad value.
 * @example parseHardeningConf('SIGIL_PORT=8443\nSIGIL_LAN_RANGES="10.0.0.0/8"\n')
 */
export function parseHardeningConf(text: string, where = HARDENING_CONF_PATH): HardeningConf {
  const raw: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^\s*([A-Z_]+)=(.*)$/.exec(line);
    if (!m) throw new HardeningConfInvalidError(where, `line ${i + 1}: expected KEY=VALUE`);
    let value = m[2].trimEnd();
    const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
    if (quoted) value = quoted[1];
    raw[m[1]] = value;
  }
  const parsed = Schema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((issue) => `${issue.path.join('.') || (issue.code === 'unrecognized_keys' ? 'unknown key' : '(file)')}: ${issue.message}`)
      .join('; ');
    throw new HardeningConfInvalidError(where, detail, { cause: parsed.error });
  }
  const c = parsed.data;
  return {
    port: c.SIGIL_PORT,
    lanRanges: c.SIGIL_LAN_RANGES,
    adminRanges: c.SIGIL_ADMIN_RANGE,
    sshPort: c.SIGIL_SSH_PORT,
    masterKeyFile: c.SIGIL_MASTER_KEY_FILE === '' ? undefined : c.SIGIL_MASTER_KEY_FILE,
    node: c.SIGIL_NODE,
    allocator: c.SIGIL_ALLOCATOR,
  };
}
