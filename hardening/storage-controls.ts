/**
 * Controls `swap` and `data-dir`: pages of the server's memory (keys) never reach an unencrypted
 * swap device, and the data directory is the service user's alone.
 */
import { fail, pass, type Control } from './control.js';
import { SERVICE_USER } from './unit-controls.js';

/** Host path of the data directory (`sigil-server start --data`). */
export const DATA_DIR = '/var/lib/sigil';

/** Names of dm-crypt mappings configured in /etc/crypttab. */
async function cryptNames(host: import('./host.js').Host): Promise<Set<string>> {
  const text = (await host.readText('/etc/crypttab')) ?? '';
  return new Set(
    text
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim().split(/\s+/)[0])
      .filter(Boolean),
  );
}

/** The `swap` and `data-dir` controls. */
export const STORAGE_CONTROLS: readonly Control[] = [
  {
    id: 'swap',
    title: 'swap is off or encrypted',
    async check(ctx) {
      const crypt = await cryptNames(ctx.host);
      const fstab = ((await ctx.host.readText('/etc/fstab')) ?? '').split('\n');
      const found: string[] = [];
      for (let i = 0; i < fstab.length; i++) {
        const [device, , type] = fstab[i].replace(/#.*/, '').trim().split(/\s+/);
        if (type !== 'swap') continue;
        const mapped = /^\/dev\/mapper\/(.+)$/.exec(device);
        if (!mapped || !crypt.has(mapped[1])) return fail(`/etc/fstab:${i + 1} swaps on ${device}, which is not a dm-crypt mapping from /etc/crypttab`);
        found.push(device);
      }
      if (ctx.host.live) {
        const swaps = ((await ctx.host.readText('/proc/swaps')) ?? '').split('\n').slice(1).filter(Boolean);
        for (const line of swaps) {
          const device = line.split(/\s+/)[0];
          const dm = /^\/dev\/(dm-\d+)$/.exec(device);
          const uuid = dm ? await ctx.host.readText(`/sys/block/${dm[1]}/dm/uuid`) : undefined;
          const inRam = /^\/dev\/zram\d+$/.test(device);
          if (!inRam && !uuid?.startsWith('CRYPT-')) return fail(`active swap ${device} is not encrypted (swapoff it, or use dm-crypt)`);
          found.push(`${device} (active${inRam ? ', in RAM' : ', dm-crypt'})`);
        }
      }
      return pass(found.length === 0 ? 'no swap' : `encrypted swap only: ${found.join(', ')}`);
    },
  },
  {
    id: 'data-dir',
    title: `${DATA_DIR} is mode 0700, owned by ${SERVICE_USER}`,
    async check(ctx) {
      const st = await ctx.host.stat(DATA_DIR);
      if (!st) return fail(`${DATA_DIR} does not exist`);
      if (!st.isDirectory()) return fail(`${DATA_DIR} is not a directory`);
      const mode = st.mode & 0o7777;
      if (mode !== 0o700) return fail(`${DATA_DIR} has mode ${mode.toString(8).padStart(4, '0')}, expected 0700`);
      // The owner is judged against the host's own passwd. A test tree usually has none (and its
      // files belong to whoever ran the test), so there only the mode can be judged.
      const passwd = (await ctx.host.readText('/etc/passwd')) ?? '';
      const entry = passwd.split('\n').find((l) => l.startsWith(`${SERVICE_USER}:`));
      if (!entry) {
        return ctx.host.live ? fail(`user ${SERVICE_USER} does not exist`) : pass(`mode 0700 (owner not judged: the tree has no ${SERVICE_USER} in /etc/passwd)`);
      }
      const uid = Number(entry.split(':')[2]);
      return st.uid === uid ? pass(`mode 0700, owner ${SERVICE_USER} (uid ${uid})`) : fail(`${DATA_DIR} is owned by uid ${st.uid}, expected ${SERVICE_USER} (uid ${uid})`);
    },
  },
];
