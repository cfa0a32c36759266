/**
 * Appliance configuration: one zod schema with every default, written to `DIR/config.json` at init
 * and read at start. Tests pass partial overrides (e.g. cheap argon2 parameters, a short lockout).
 */
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { cidrMatcher, DEFAULT_ALLOWED_PEERS, LAN_RANGES, parseCidr } from './net/lan.js';
import { VAULT_PAGE_SIZE, WAL_AUTOCHECKPOINT_PAGES } from './vault/index.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Each range of the LAN rule (`LAN_RANGES`, the ones `--listen` is held to) with a BlockList of its own. */
const LAN_SUBNETS = Object.values(LAN_RANGES)
  .flat()
  .map((range) => {
    const outer = parseCidr(range);
    const list = new net.BlockList();
    list.addSubnet(outer.address, outer.prefix, outer.family);
    return { outer, list };
  });

const LAN_TEXT = Object.entries(LAN_RANGES)
  .map(([cls, ranges]) => `${cls} ${ranges.join(', ')}`)
  .join('; ');

/**
 * True when every address of `cidr` lies in one LAN range. Families must match:
 * `::ffff:10.0.0.0/104` is an IPv6 range, not 10.0.0.0/8.
 */
function withinLan(cidr: string): boolean {
  const inner = parseCidr(cidr);
  return LAN_SUBNETS.some(({ outer, list }) => outer.family === inner.family && inner.prefix >= outer.prefix && list.check(inner.address, inner.family));
}

/** Peer CIDRs: each parses and lies within the LAN ranges, so config cannot open the server wider. */
const peerList = z
  .array(z.string())
  .min(1)
  .superRefine((list, ctx) => {
    try {
      cidrMatcher(list);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return;
    }
    for (const [i, cidr] of list.entries()) {
      if (!withinLan(cidr)) {
        ctx.addIssue({ code: 'custom', path: [i], message: `${cidr} is not within the LAN ranges Sigil accepts peers from (${LAN_TEXT})` });
      }
    }
  });

/**
 * Default size of the disk reserve (server/vault/disk-reserve.ts): what a deletion on a disk full
 * to the last byte needs first is a checkpoint, which grows vault.db by the WAL's frames past its
 * end. The WAL checkpoints itself at WAL_AUTOCHECKPOINT_PAGES (32 MiB); when that checkpoint fails
 * for lack of room, the WAL grows by what room is left — less than the checkpoint needed, so less
 * than 32 MiB more. Twice that, plus 4 MiB (a few 1 MiB chunks of the deletion's own zeroed pages
 * and keys.db's): 68 MiB.
 */
export const DEFAULT_DISK_RESERVE_BYTES = 2 * WAL_AUTOCHECKPOINT_PAGES * VAULT_PAGE_SIZE + 4 * 1024 * 1024;

/** The configuration schema. Every field has a default; `{}` is a valid configuration. */
/** Default caps of long-lived requests per account (`maxEventStreamsPerUser`, `maxSendStreamsPerUser`). */
export const STREAMS_PER_USER = { events: 16, send: 8 } as const;

export const ConfigSchema = z.object({
  /** `host:port` to listen on; loopback/private/link-local only. */
  listen: z.string().default('127.0.0.1:8443'),
  /** Organisation name in certificate subjects. */
  org: z.string().min(1).max(64).default('Sigil'),
  /**
   * Peers accepted at connection time (CIDRs). Default: every LAN range. Each entry must lie within
   * one LAN range (`LAN_RANGES`: loopback, private, link-local), the same rule as `listen`: a
   * narrower list is fine, `0.0.0.0/0` or a public range is refused.
   */
  allowedPeers: peerList.default([...DEFAULT_ALLOWED_PEERS]),
  /** argon2id cost for account passwords. Defaults meet OWASP's minimum (m=19 MiB, t=2, p=1). */
  argon2: z
    .object({
      memoryCost: z.number().int().min(1024).default(19_456),
      timeCost: z.number().int().min(1).default(2),
      parallelism: z.number().int().min(1).default(1),
      /** How many hashes run at once (each holds `memoryCost` KiB). Default: available parallelism. */
      concurrency: z.number().int().min(1).optional(),
    })
    .default({ memoryCost: 19_456, timeCost: 2, parallelism: 1 }),
  /** How long an unused envelope stays valid. */
  envelopeTtlMs: z.number().int().positive().default(7 * DAY),
  /** Session idle timeout and absolute lifetime. */
  sessionIdleMs: z.number().int().positive().default(30 * MINUTE),
  sessionAbsoluteMs: z.number().int().positive().default(12 * HOUR),
  /** Login nonce lifetime. */
  nonceTtlMs: z.number().int().positive().default(60_000),
  /** Lockout: `maxFailures` consecutive failures within `windowMs` lock for `lockMs` (or until unlocked). */
  lockout: z
    .object({
      maxFailures: z.number().int().min(1).default(5),
      windowMs: z.number().int().positive().default(15 * MINUTE),
      lockMs: z.number().int().positive().default(30 * MINUTE),
    })
    .default({ maxFailures: 5, windowMs: 15 * MINUTE, lockMs: 30 * MINUTE }),
  /**
   * Long-lived requests one account may hold at once (routes/stream-slots.ts): live event streams
   * (`GET /v1/events`) and send streams (`POST /v1/messages/stream`). Beyond, 429 TOO_MANY_STREAMS.
   */
  maxEventStreamsPerUser: z.number().int().min(1).default(STREAMS_PER_USER.events),
  maxSendStreamsPerUser: z.number().int().min(1).default(STREAMS_PER_USER.send),
  /**
   * Open connections the listener accepts in all (Node's `server.maxConnections`); beyond, new
   * ones are closed at once. Far above any LAN's workstations, below the process's descriptors.
   */
  maxConnections: z.number().int().min(16).default(4096),
  /** Default request body limit in bytes (routes may set their own). */
  bodyLimit: z.number().int().positive().default(64 * 1024),
  /** How long a published CRL is valid (its nextUpdate). */
  crlValidityMs: z.number().int().positive().default(7 * DAY),
  /**
   * Bytes (random, a file in the vault directory) held back so that deletions can run on a full
   * disk (server/vault/README.md, "A full disk"); 0 turns it off. Made at start when the disk has
   * room for it and 16 MiB more.
   */
  diskReserveBytes: z.number().int().min(0).default(DEFAULT_DISK_RESERVE_BYTES),
  /** Log level. */
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /**
   * The organisation's ranks or positions, highest first (`["Director", "Head of unit", …]`): the
   * directory lists each department's people in this order, then those with another rank, then
   * those with none. Compared without case. Default none: by name only.
   */
  ranks: z.array(z.string().trim().min(1).max(64)).max(200).default([]),
});

/** A complete configuration (after defaults). */
export type Config = z.infer<typeof ConfigSchema>;
/** What a caller may override. */
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Thrown when configuration does not parse. */
export class ConfigInvalidError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(where: string, detail: string, options?: { cause?: unknown }) {
    super(`invalid configuration in ${where}: ${detail}`, options);
    this.name = 'ConfigInvalidError';
  }
}

/** Parses a configuration object, filling defaults. Throws `ConfigInvalidError`. */
export function parseConfig(input: unknown, where = 'configuration'): Config {
  const parsed = ConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigInvalidError(where, detail, { cause: parsed.error });
  }
  return parsed.data;
}

/** Reads `path` (JSON) and merges `overrides` on top (shallow per top-level key). */
export async function loadConfig(path: string, overrides: ConfigInput = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigInvalidError(path, 'cannot read the file', { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigInvalidError(path, 'not JSON', { cause: err });
  }
  if (typeof json !== 'object' || json === null) throw new ConfigInvalidError(path, 'expected an object');
  return parseConfig({ ...(json as object), ...overrides }, path);
}
