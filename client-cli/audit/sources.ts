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
import { AuditFileError } from './errors.js';
import { TrailDataError, type EntryRow, type ListedNote, type TrailSource } from './verify.js';

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

export const toNote = (c: CheckpointWire): ListedNote => ({ note: c.note, signature: b64bytes(c.signature), ...(c.id !== undefined ? { id: c.id } : {}) });

/** The appliance as a trail source (session required; auditor or officer for entries). */
export function httpSource(
  http: HttpClient,
): TrailSource & { chain(): Promise<string>; latestWire(): Promise<CheckpointWire>; checkpointWires(): AsyncIterable<CheckpointWire> } {
  let latest: Promise<{ checkpoint: CheckpointWire; chain: string }> | undefined;
  const getLatest = () => (latest ??= http.get('/v1/audit/checkpoint', CheckpointAnswerSchema));
  /**
   * Stored checkpoints, oldest first, ending with the latest one this source took: those signed
   * after it (the appliance keeps signing while we read) are not part of this trail. When the list
   * does not hold that latest one (or has no ids), all of it is given.
   */
  async function* checkpointWires(): AsyncIterable<CheckpointWire> {
    const top = (await getLatest()).checkpoint;
    for (let after = 0; ; ) {
      const page = await http.get(`/v1/audit/checkpoints?after=${after}&limit=1000`, CheckpointsAnswerSchema);
      for (const c of page.checkpoints) {
        yield c;
        if (top.id !== undefined && c.id === top.id && c.note === top.note && c.signature === top.signature) return;
      }
      const last = page.checkpoints[page.checkpoints.length - 1];
      if (page.checkpoints.length < 1000 || last?.id === undefined) return;
      after = last.id;
    }
  }
  return {
    latestWire: async () => (await getLatest()).checkpoint,
    latest: async () => toNote((await getLatest()).checkpoint),
    chain: async () => (await getLatest()).chain,
    checkpointWires,
    async *checkpoints() {
      for await (const c of checkpointWires()) yield toNote(c);
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

/**
 * The lines of an export file. A line that is not JSON is a defect of the export (tampering or
 * damage), reported through `bad` as a {@link TrailDataError}; a file that cannot be read is a
 * tool error ({@link AuditFileError}).
 */
async function* jsonLines(path: string, bad: (line: number, problem: string) => TrailDataError): AsyncIterable<{ line: number; value: unknown }> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of rl) {
      n++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw bad(n, 'is not JSON');
      }
      yield { line: n, value };
    }
  } catch (err) {
    if (err instanceof TrailDataError) throw err;
    throw new AuditFileError(path, 'cannot be read', err);
  }
}

/** The seq a wrong-shaped entry line still states, if any. */
function statedSeq(value: unknown): number | undefined {
  const seq = (value as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

/**
 * An export folder as a trail source; no consistency proofs (every entry is there to recompute).
 * A line of `entries.jsonl` or `checkpoints.jsonl` that is not JSON, or not an entry or checkpoint,
 * makes verification fail ({@link TrailDataError}: file and line; verifyTrail names the entry).
 */
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
      const file = p('checkpoints');
      const bad = (line: number, problem: string) => new TrailDataError('checkpoint-invalid', `${file} line ${line} ${problem}`);
      for await (const { line, value } of jsonLines(file, bad)) {
        const r = CheckpointWireSchema.safeParse(value);
        if (!r.success) throw bad(line, 'is not a checkpoint');
        yield toNote(r.data);
      }
    },
    async *entries(from: number, to: number) {
      const file = p('entries');
      // The failure names the entry expected at this point (verifyTrail); a seq the line states is untrusted, so only quoted.
      const bad = (line: number, problem: string) => new TrailDataError('malformed-entry', `${file} line ${line} ${problem}`);
      for await (const { line, value } of jsonLines(file, bad)) {
        const r = EntryWireSchema.safeParse(value);
        if (!r.success) {
          const seq = statedSeq(value);
          throw bad(line, seq === undefined ? 'is not an entry' : `is not an entry (it says seq ${seq})`);
        }
        if (r.data.seq < from) continue;
        if (r.data.seq >= to) return;
        yield { seq: r.data.seq, data: r.data.data, leafHash: b64bytes(r.data.leafHash) };
      }
    },
  };
}
