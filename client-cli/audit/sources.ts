/**
 * The two places a trail is verified from: the appliance over HTTPS (`httpSource`), and an
 * export folder written by `sigil audit export` (`dirSource`), which needs no network at all.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { HttpClient } from '../http.js';
import {
  b64bytes,
  CheckpointAnswerSchema,
  CheckpointsAnswerSchema,
  CheckpointWireSchema,
  ConsistencyAnswerSchema,
  EntriesAnswerSchema,
  EntryWireSchema,
  type CheckpointWire,
} from './api.js';
import type { SignedNote } from './checkpoint.js';
import { AuditFileError } from './errors.js';
import type { EntryRow, TrailSource } from './verify.js';

/** Files of an export folder. */
export const EXPORT_FILES = {
  manifest: 'manifest.json',
  entries: 'entries.jsonl',
  checkpoints: 'checkpoints.jsonl',
  latestNote: 'checkpoint.txt',
  latestSig: 'checkpoint.sig.der',
  chain: 'chain.pem',
  ca: 'ca.pem',
  crl: 'crl.pem',
  readme: 'README.md',
} as const;

export const toNote = (c: CheckpointWire): SignedNote => ({ note: c.note, signature: b64bytes(c.signature) });

/** The appliance as a trail source (session required; auditor or officer for entries). */
export function httpSource(http: HttpClient): TrailSource & { chain(): Promise<string>; latestWire(): Promise<CheckpointWire> } {
  let latest: Promise<{ checkpoint: CheckpointWire; chain: string }> | undefined;
  const getLatest = () => (latest ??= http.get('/v1/audit/checkpoint', CheckpointAnswerSchema));
  return {
    latestWire: async () => (await getLatest()).checkpoint,
    latest: async () => toNote((await getLatest()).checkpoint),
    chain: async () => (await getLatest()).chain,
    async *checkpoints() {
      for (let after = 0; ; ) {
        const page = await http.get(`/v1/audit/checkpoints?after=${after}&limit=1000`, CheckpointsAnswerSchema);
        for (const c of page.checkpoints) yield toNote(c);
        const last = page.checkpoints[page.checkpoints.length - 1];
        if (page.checkpoints.length < 1000 || last?.id === undefined) return;
        after = last.id;
      }
    },
    async *entries(from: number, to: number): AsyncIterable<EntryRow> {
      for (let at = from; at < to; ) {
        const page = await http.get(`/v1/audit/entries?from=${at}&to=${to}`, EntriesAnswerSchema);
        for (const e of page.entries) yield { seq: e.seq, data: e.data, leafHash: b64bytes(e.leafHash) };
        // The page covers [page.from, page.to) whatever entries it holds; a short page ends it.
        if (page.to <= at) return;
        at = page.to;
      }
    },
    async consistency(m: number, n: number) {
      const r = await http.get(`/v1/audit/proofs/consistency?from=${m}&to=${n}`, ConsistencyAnswerSchema);
      return r.proof.map(b64bytes);
    },
  };
}

async function* jsonLines(path: string): AsyncIterable<{ line: number; value: unknown }> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of rl) {
      n++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new AuditFileError(path, `line ${n} is not JSON`, err);
      }
      yield { line: n, value };
    }
  } catch (err) {
    if (err instanceof AuditFileError) throw err;
    throw new AuditFileError(path, 'cannot be read', err);
  }
}

/** An export folder as a trail source; no consistency proofs (every entry is there to recompute). */
export function dirSource(dir: string): TrailSource {
  const p = (f: keyof typeof EXPORT_FILES) => join(dir, EXPORT_FILES[f]);
  return {
    async latest() {
      try {
        return { note: await readFile(p('latestNote'), 'utf8'), signature: new Uint8Array(await readFile(p('latestSig'))) };
      } catch (err) {
        throw new AuditFileError(p('latestNote'), 'or its signature cannot be read: is this an audit export folder?', err);
      }
    },
    async *checkpoints() {
      for await (const { line, value } of jsonLines(p('checkpoints'))) {
        const r = CheckpointWireSchema.safeParse(value);
        if (!r.success) throw new AuditFileError(p('checkpoints'), `line ${line} is not a checkpoint`, r.error);
        yield toNote(r.data);
      }
    },
    async *entries(from: number, to: number) {
      for await (const { line, value } of jsonLines(p('entries'))) {
        const r = EntryWireSchema.safeParse(value);
        if (!r.success) throw new AuditFileError(p('entries'), `line ${line} is not an entry`, r.error);
        if (r.data.seq < from) continue;
        if (r.data.seq >= to) return;
        yield { seq: r.data.seq, data: r.data.data, leafHash: b64bytes(r.data.leafHash) };
      }
    },
  };
}
