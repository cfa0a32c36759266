/**
 * Controls `modprobe.*`: "no usable I/O connectors". Each module that would make USB storage,
 * FireWire or Thunderbolt usable is blacklisted (no autoload by alias) and has `install <m>
 * /bin/false` (every load fails, also as a dependency); on a live host it must also not be loaded.
 */
import { fail, pass, type Control } from './control.js';

/** modprobe.d(5) search path, most important first. */
const MODPROBE_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d', '/lib/modprobe.d'];

/** Commands that make a load do nothing. */
const BLOCKING = new Set(['/bin/false', '/usr/bin/false', '/bin/true', '/usr/bin/true']);

/** Modules that must not load, with the control id suffix (the name as users spell it). */
export const BLOCKED_MODULES: ReadonlyArray<{ module: string; id: string; what: string }> = [
  { module: 'usb_storage', id: 'usb-storage', what: 'USB mass storage' },
  { module: 'uas', id: 'uas', what: 'USB Attached SCSI storage' },
  { module: 'firewire_core', id: 'firewire-core', what: 'FireWire core' },
  { module: 'firewire_ohci', id: 'firewire-ohci', what: 'FireWire OHCI controllers' },
  { module: 'thunderbolt', id: 'thunderbolt', what: 'Thunderbolt' },
];

/** kmod treats `-` and `_` in module names alike. */
const norm = (name: string) => name.replace(/-/g, '_');

interface ModprobeConfig {
  blacklisted: Map<string, string>;
  installs: Map<string, Array<{ command: string; where: string }>>;
}

async function readConfig(host: import('./host.js').Host): Promise<ModprobeConfig> {
  const blacklisted = new Map<string, string>();
  const installs = new Map<string, Array<{ command: string; where: string }>>();
  for (const file of await host.confDirFiles(MODPROBE_DIRS)) {
    const lines = ((await host.readText(file)) ?? '').split('\n');
    lines.forEach((raw, i) => {
      const words = raw.replace(/#.*/, '').trim().split(/\s+/);
      const where = `${file}:${i + 1}`;
      if (words[0] === 'blacklist' && words[1]) blacklisted.set(norm(words[1]), where);
      if (words[0] === 'install' && words[1]) {
        const list = installs.get(norm(words[1])) ?? [];
        list.push({ command: words.slice(2).join(' '), where });
        installs.set(norm(words[1]), list);
      }
    });
  }
  return { blacklisted, installs };
}

/** The `modprobe.*` controls, one per module. */
export const MODPROBE_CONTROLS: readonly Control[] = BLOCKED_MODULES.map(({ module, id, what }) => ({
  id: `modprobe.${id}`,
  title: `${what} (${module}) cannot be loaded`,
  async check(ctx) {
    const conf = await readConfig(ctx.host);
    const installs = conf.installs.get(module) ?? [];
    if (installs.length === 0) return fail(`no "install ${module} /bin/false" in modprobe.d: the module loads on demand`);
    const open = installs.find((i) => !BLOCKING.has(i.command));
    if (open) return fail(`"install ${module} ${open.command}" at ${open.where} still loads it; expected /bin/false`);
    if (!conf.blacklisted.has(module)) return fail(`${module} has install /bin/false but is not blacklisted (alias autoload would log failures)`);
    if (ctx.host.live) {
      const loaded = ((await ctx.host.readText('/proc/modules')) ?? '').split('\n').some((l) => l.split(' ')[0] === module);
      if (loaded) return fail(`${module} is blocked in modprobe.d but loaded now (rmmod it or reboot)`);
    }
    return pass(`blacklisted and install ${installs[0].command} (${installs[0].where})`);
  },
}));
