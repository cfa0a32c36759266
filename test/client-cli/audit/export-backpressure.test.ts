/**
 * `writeExport` (client-cli/audit/export.ts) over a trail large enough that its entries file waits
 * for the stream to drain many times: every entry is written, and waiting leaves no listener behind
 * (a wait that also listened for 'close' once left one per drain, and past ten Node printed a
 * MaxListenersExceededWarning on the CLI's stderr).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { writeExport, type ExportInput } from '../../../client-cli/audit/export.js';
import { EXPORT_FILES } from '../../../client-cli/audit/sources.js';
import { tmpDir } from '../../helpers/tmp.js';

const wire = { id: 1, origin: 'sigil.test/audit', size: 3000, root: Buffer.alloc(32).toString('base64'), time: '2026-03-02T08:00:00Z' };
const note = `${wire.origin}\n${wire.size}\n${wire.root}\n${wire.time}\n`;

t.test('when an audit export waits on its entries file many times then every entry is written and no listener is left behind', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const out = join(tmpDir(t, 'sigil-audit-export-drain-'), 'trail');
  const x = {
    source: {
      latestWire: async () => ({ ...wire, note, signature: Buffer.from([1]).toString('base64') }),
      entries: async function* (from: number, to: number) {
        // ~1 KiB a line: some 190 drains of the stream's 16 KiB buffer.
        for (let seq = from; seq < to; seq++) yield { seq, data: 'x'.repeat(1000) };
      },
    },
    checkpoints: (async function* () {})(),
    chainPem: 'chain\n',
    pinnedPem: 'pinned\n',
    now: new Date('2026-03-02T09:00:00Z'),
  } as unknown as ExportInput;
  const r = await writeExport(out, x);
  t.equal(r.size, wire.size);
  t.equal(readFileSync(join(out, EXPORT_FILES.entries), 'utf8').trimEnd().split('\n').length, wire.size, 'every entry written');
  // A warning is emitted on the next tick after the listener that passes the limit.
  await new Promise((r) => setImmediate(r));
  t.same(warnings, [], 'no MaxListenersExceededWarning');
});
