/**
 * Controls `coredump.*`: a core dump of sigil-server would hold the master key and conversation
 * keys, so none may be written: systemd-coredump stores nothing, PAM sessions and systemd services
 * get a core limit of 0. (kernel.core_pattern and fs.suid_dumpable are `sysctl.*` controls; the
 * unit's own LimitCORE=0 is `unit.limit-core`.)
 */
import { fail, pass, type Control } from './control.js';
import { loadIniWithDropIns, SYSTEMD_CONF_DIRS } from './ini-file.js';

/** The `coredump.*` controls. */
export const COREDUMP_CONTROLS: readonly Control[] = [
  {
    id: 'coredump.storage',
    title: 'systemd-coredump stores nothing (Storage=none)',
    async check(ctx) {
      const loaded = await loadIniWithDropIns(ctx.host, SYSTEMD_CONF_DIRS, 'coredump.conf');
      const a = loaded?.settings.last('Coredump', 'Storage');
      if (!a) return fail('Storage= is not set in coredump.conf or its drop-ins (default: external, dumps kept on disk)');
      return a.value === 'none' ? pass(`Storage=none (${a.file}:${a.line})`) : fail(`Storage=${a.value} at ${a.file}:${a.line}, expected none`);
    },
  },
  {
    id: 'coredump.limits',
    title: 'core limit 0 for every login (limits.d)',
    async check(ctx) {
      const files = ['/etc/security/limits.conf', ...(await ctx.host.confDirFiles(['/etc/security/limits.d']))];
      let hardZero: string | undefined;
      for (const file of files) {
        const lines = ((await ctx.host.readText(file)) ?? '').split('\n');
        for (let i = 0; i < lines.length; i++) {
          const [domain, type, item, value] = lines[i].replace(/#.*/, '').trim().split(/\s+/);
          if (item !== 'core') continue;
          if (value !== '0') return fail(`${file}:${i + 1} allows core files for ${domain} (${type} core ${value})`);
          if (domain === '*' && (type === 'hard' || type === '-')) hardZero = `${file}:${i + 1}`;
        }
      }
      return hardZero ? pass(`* hard core 0 (${hardZero})`) : fail('no "* hard core 0" in /etc/security/limits.conf or limits.d');
    },
  },
  {
    id: 'coredump.systemd-default',
    title: 'core limit 0 for every service (DefaultLimitCORE=0)',
    async check(ctx) {
      const loaded = await loadIniWithDropIns(ctx.host, SYSTEMD_CONF_DIRS, 'system.conf');
      const a = loaded?.settings.last('Manager', 'DefaultLimitCORE');
      if (!a) return fail('DefaultLimitCORE= is not set in system.conf or its drop-ins');
      return a.value === '0' || a.value === '0:0'
        ? pass(`DefaultLimitCORE=${a.value} (${a.file}:${a.line})`)
        : fail(`DefaultLimitCORE=${a.value} at ${a.file}:${a.line}, expected 0`);
    },
  },
];
