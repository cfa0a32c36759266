/**
 * Controls `sysctl.*`: kernel settings for a host that is not a router, hides kernel pointers and
 * logs, and never writes a core dump. On a live host the value in /proc/sys is judged (what the
 * kernel does now); in a tree, the value the sysctl.d files would set at boot.
 */
import { fail, pass, type Control } from './control.js';
import type { Host } from './host.js';

/** Expected values. Kept here, apart from the installed sysctl-sigil.conf, so that one checks the other. */
export const EXPECTED_SYSCTL: Readonly<Record<string, string>> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv6.conf.all.forwarding': '0',
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.default.accept_redirects': '0',
  'net.ipv6.conf.all.accept_redirects': '0',
  'net.ipv6.conf.default.accept_redirects': '0',
  'net.ipv4.conf.all.secure_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.default.send_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv6.conf.all.accept_source_route': '0',
  'net.ipv4.conf.all.rp_filter': '1',
  'net.ipv4.tcp_syncookies': '1',
  'kernel.kptr_restrict': '2',
  'kernel.dmesg_restrict': '1',
  'kernel.perf_event_paranoid': '3',
  'kernel.unprivileged_bpf_disabled': '1',
  'kernel.kexec_load_disabled': '1',
  'kernel.sysrq': '0',
  'kernel.randomize_va_space': '2',
  'kernel.yama.ptrace_scope': '2',
  'fs.protected_hardlinks': '1',
  'fs.protected_symlinks': '1',
  'fs.suid_dumpable': '0',
  'kernel.core_pattern': '|/bin/false',
};

/** sysctl.d(5) search path, most important first; /etc/sysctl.conf is applied last by `sysctl --system`. */
const SYSCTL_DIRS = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d'];

/** Reads the boot-time values the sysctl.d files set: key → { value, where }. */
export async function readSysctlFiles(host: Host): Promise<Map<string, { value: string; where: string }>> {
  const values = new Map<string, { value: string; where: string }>();
  const files = [...(await host.confDirFiles(SYSCTL_DIRS)), '/etc/sysctl.conf'];
  for (const file of files) {
    const text = await host.readText(file);
    if (text === undefined) continue;
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
      const eq = line.indexOf('=');
      if (eq < 0) return;
      // A leading "-" only means "ignore errors"; "/" separators are the same as ".".
      const key = line.slice(0, eq).trim().replace(/^-/, '').replace(/\//g, '.');
      values.set(key, { value: line.slice(eq + 1).trim(), where: `${file}:${i + 1}` });
    });
  }
  return values;
}

const cache = new WeakMap<object, Promise<Map<string, { value: string; where: string }>>>();
const norm = (v: string) => v.trim().replace(/\s+/g, ' ');

/** The `sysctl.*` controls, one per key. */
export const SYSCTL_CONTROLS: readonly Control[] = Object.entries(EXPECTED_SYSCTL).map(([key, expected]) => ({
  id: `sysctl.${key}`,
  title: `${key} = ${expected}`,
  async check(ctx) {
    if (ctx.host.live) {
      const procPath = `/proc/sys/${key.replace(/\./g, '/')}`;
      const live = await ctx.host.readText(procPath);
      if (live === undefined) {
        if (key.startsWith('net.ipv6.') && (await ctx.host.stat('/proc/sys/net/ipv6')) === undefined) return pass('IPv6 is disabled');
        return fail(`${procPath} does not exist on this kernel`);
      }
      return norm(live) === expected ? pass(`${key} = ${norm(live)} (live)`) : fail(`${key} is ${norm(live)} now, expected ${expected}`);
    }
    let loading = cache.get(ctx);
    if (!loading) cache.set(ctx, (loading = readSysctlFiles(ctx.host)));
    const found = (await loading).get(key);
    if (!found) return fail(`${key} is set by no sysctl.d file (the kernel default applies), expected ${expected}`);
    return norm(found.value) === expected
      ? pass(`${key} = ${found.value} (${found.where})`)
      : fail(`${key} = ${found.value} at ${found.where}, expected ${expected}`);
  },
}));
