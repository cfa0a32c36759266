/**
 * Review defects in how check reads the sigil-server unit, each reproduced the controls.test.ts way:
 * a tree hardened by the real apply, one file changed, then `runChecks`. Every case here passed
 * check before the fix although systemd would run the service weakened.
 */
import t from 'tap';
import { readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChecks } from '../../hardening/index.js';
import { failing, fakeLibrary, hardenedTree, JEMALLOC, put, reasonOf, runControlCases, type ControlCase } from './helpers/tree.js';

const UNIT = '/etc/systemd/system/sigil-server.service';
const DROPIN = '/etc/systemd/system/sigil-server.service.d/zz.conf';
const SERVER = '/usr/bin/node /opt/sigil/dist/server/main.js start --data /var/lib/sigil';
/** A drop-in that would run the server as root and open it to any address. */
const WEAKEN = '[Service]\nUser=root\nIPAddressAllow=any\n';
const WEAKENED = ['unit.user', 'unit.ip-address-policy'];
/** Writes `text` as the drop-in DROPIN of a tree (a case's `mutate`). */
const dropIn = (text: string) => (r: string) => put(r, DROPIN, text);
/** A drop-in that replaces ExecStart= with the server run with `prefix`. */
const execStart = (prefix: string) => `[Service]\nExecStart=\nExecStart=${prefix}${SERVER}\n`;
/** The unit as apply rendered it, with User=root. */
const rootUnit = (r: string) => readFileSync(join(r, UNIT), 'utf8').replace(/^User=sigil$/m, 'User=root');


const cases: ControlCase[] = [
  // Review defect 1: drop-in directories systemd reads but check did not.
  {
    name: 'a top-level service.d drop-in (for every service) sets User=root and IPAddressAllow=any',
    ids: WEAKENED,
    reason: /User=root at \/etc\/systemd\/system\/service\.d\/x\.conf:2, expected sigil/,
    mutate: (r) => put(r, '/etc/systemd/system/service.d/x.conf', WEAKEN),
  },
  // Review defect 1.
  {
    name: 'a prefix drop-in sigil-.service.d sets User=root and IPAddressAllow=any',
    ids: WEAKENED,
    reason: /User=root at \/etc\/systemd\/system\/sigil-\.service\.d\/x\.conf:2/,
    mutate: (r) => put(r, '/etc/systemd/system/sigil-.service.d/x.conf', WEAKEN),
  },
  // Review defect 1: where `systemctl set-property` writes.
  {
    name: 'systemctl set-property wrote a drop-in in /etc/systemd/system.control',
    ids: WEAKENED,
    reason: /User=root at \/etc\/systemd\/system\.control\/sigil-server\.service\.d\/50-x\.conf:2/,
    mutate: (r) => put(r, '/etc/systemd/system.control/sigil-server.service.d/50-x.conf', WEAKEN),
  },
  // Review defect 1: where `systemctl set-property --runtime` writes.
  {
    name: 'systemctl set-property --runtime wrote a drop-in in /run/systemd/system.control',
    ids: WEAKENED,
    reason: /User=root at \/run\/systemd\/system\.control\/sigil-server\.service\.d\/50-x\.conf:2/,
    mutate: (r) => put(r, '/run/systemd/system.control/sigil-server.service.d/50-x.conf', WEAKEN),
  },
  // Review defect 1: a drop-in name in a directory earlier on the search path hides the same name later.
  {
    name: 'a runtime set-property drop-in hides a same-named drop-in in /etc/systemd/system',
    ids: ['unit.user'],
    reason: /User=root at \/run\/systemd\/system\.control\/sigil-server\.service\.d\/10-a\.conf:2/,
    mutate: (r) => {
      put(r, '/run/systemd/system.control/sigil-server.service.d/10-a.conf', '[Service]\nUser=root\n');
      put(r, '/etc/systemd/system/sigil-server.service.d/10-a.conf', '[Service]\nUser=sigil\n');
    },
  },
  // Review defect 1: systemd also reads the drop-ins of the unit's other names (Alias=).
  {
    name: 'an alias sigil.service has a drop-in that sets User=root',
    ids: ['unit.user'],
    reason: /User=root at \/etc\/systemd\/system\/sigil\.service\.d\/x\.conf:2/,
    mutate: (r) => {
      symlinkSync('sigil-server.service', join(r, '/etc/systemd/system/sigil.service'));
      put(r, '/etc/systemd/system/sigil.service.d/x.conf', '[Service]\nUser=root\n');
    },
  },
  // Review defect 1: the unit file is the first on the search path, and /run/systemd/transient comes before /etc.
  {
    name: 'a unit in /run/systemd/transient runs as root',
    ids: ['unit.user'],
    reason: /User=root at \/run\/systemd\/transient\/sigil-server\.service:\d+/,
    mutate: (r) => put(r, '/run/systemd/transient/sigil-server.service', rootUnit(r)),
  },
  // Review defect 1: systemd skips hidden drop-ins, so one cannot undo a visible one.
  {
    name: 'a hidden drop-in restores User=sigil after a visible one set root',
    ids: ['unit.user'],
    reason: /User=root at .*\/-weak\.conf:2/,
    mutate: (r) => {
      put(r, '/etc/systemd/system/sigil-server.service.d/-weak.conf', '[Service]\nUser=root\n');
      put(r, '/etc/systemd/system/sigil-server.service.d/.restore.conf', '[Service]\nUser=sigil\n');
    },
  },

  // Review defect 2: ExecStart= prefixes and the other Exec*= settings.
  {
    name: 'a drop-in runs the server with ExecStart=+ (full privileges, no sandbox)',
    ids: ['unit.present', 'unit.user'],
    reason: /ExecStart=\+\/usr\/bin\/node .* at .*zz\.conf:3: the "\+" prefix runs it with full privileges and no sandbox/,
    mutate: dropIn(execStart('+')),
  },
  // Review defect 2.
  {
    name: 'a drop-in runs the server with ExecStart=! (User= ignored)',
    ids: ['unit.present', 'unit.user'],
    reason: /the "!" prefix runs it as root, ignoring User=/,
    mutate: dropIn(execStart('!')),
  },
  // Review defect 2: `!!` keeps User= where the kernel has ambient capabilities, so only unit.present fails.
  {
    name: 'a drop-in runs the server with ExecStart=!!',
    ids: ['unit.present'],
    reason: /the "!!" prefix runs it as root on a kernel without ambient capabilities/,
    mutate: dropIn(execStart('!!')),
  },
  // Review defect 2: harmless prefixes do not hide a `+` among them.
  {
    name: 'a drop-in runs the server with ExecStart=-@+ and argv[0] apart',
    ids: ['unit.present', 'unit.user'],
    reason: /the "\+" prefix runs it with full privileges/,
    mutate: dropIn('[Service]\nExecStart=\nExecStart=-@+/usr/bin/node node /opt/sigil/dist/server/main.js start --data /var/lib/sigil\n'),
  },
  // Review defect 2: systemd C-unescapes the first word before it reads the prefixes (\x2b is "+").
  {
    name: 'a drop-in writes the + prefix of ExecStart= escaped',
    ids: ['unit.present'],
    reason: /ExecStart=\\x2b\/usr\/bin\/node .*: not a plain absolute path without quotes, escapes or % specifiers, so check cannot judge its prefixes/,
    mutate: dropIn(execStart('\\x2b')),
  },
  // Review defect 2: a second ExecStart= without a reset is a second command (Type=oneshot runs both).
  {
    name: 'a drop-in adds a second ExecStart= command without resetting the first',
    ids: ['unit.present'],
    reason: /ExecStart= has 2 commands \(.*sigil-server\.service:\d+, .*zz\.conf:3\), expected one/,
    mutate: dropIn(`[Service]\nType=oneshot\nExecStart=${SERVER}\n`),
  },
  // Review defect 2: PermissionsStartOnly=yes is "+" on every Exec*= but ExecStart=.
  {
    name: 'a drop-in sets PermissionsStartOnly=yes',
    ids: ['unit.present'],
    reason: /PermissionsStartOnly=yes at .*zz\.conf:2 is not off: on, it runs the other Exec\*= commands with full privileges/,
    mutate: dropIn('[Service]\nPermissionsStartOnly=yes\nExecStartPre=/bin/true\n'),
  },
  // Review defect 2: one command among several in an ExecStopPost= line.
  {
    name: 'a drop-in hides a + command after a ; in ExecStopPost=',
    ids: ['unit.present'],
    reason: /ExecStopPost=\+\/bin\/sh -c id at .*zz\.conf:2: the "\+" prefix/,
    mutate: dropIn('[Service]\nExecStopPost=/bin/true ; +/bin/sh -c id\n'),
  },
  // Review defect 2: systemd stops reading a drop-in at a command it rejects, so the reset after it is lost.
  {
    name: 'a drop-in resets an ExecStartPost= it wrote with a relative path, then sets User=sigil after User=root',
    ids: ['unit.present'],
    reason: /ExecStartPost=rel\/path at .*zz\.conf:3: not a plain absolute path .*systemd stops reading the file at a command it rejects/,
    mutate: dropIn('[Service]\nUser=root\nExecStartPost=rel/path\nExecStartPost=\nUser=sigil\n'),
  },
  ...['ExecCondition', 'ExecStartPre', 'ExecStartPost', 'ExecReload', 'ExecStop', 'ExecStopPost'].map(
    (key): ControlCase => ({
      // Review defect 2: the Exec*= settings besides ExecStart= were never read.
      name: `a drop-in adds ${key}=! (a command run as root)`,
      ids: ['unit.present'],
      reason: new RegExp(`${key}=!/bin/sh -c id at .*zz\\.conf:2: the "!" prefix runs it as root`),
      mutate: dropIn(`[Service]\n${key}=!/bin/sh -c id\n`),
    }),
  ),

  // Review defect 3: parseIni continued and trimmed lines differently from systemd's config_parse.
  {
    name: 'an escaped backslash ends a line before User=root',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:3/,
    mutate: dropIn('[Service]\nEnvironment=A=b\\\\\nUser=root\n'),
  },
  // Review defect 3.
  {
    name: 'a backslash followed by a space ends a line before User=root',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:3/,
    mutate: dropIn('[Service]\nX-Note=x\\ \nUser=root\n'),
  },
  // Review defect 3: systemd skips the comment and glues User=sigil into X-Note.
  {
    name: 'a comment line inside a continuation is skipped and User=sigil glued to X-Note',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: dropIn('[Service]\nUser=root\nX-Note=x \\\n# note\nUser=sigil\n'),
  },
  // Review defect 3: a lone carriage return ends a line for systemd's read_line().
  {
    name: 'User=root follows a lone carriage return',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:3, expected sigil/,
    mutate: dropIn('[Service]\nX-Note=x\rUser=root\n'),
  },
  // Review defect 3: systemd strips only space, tab, CR, LF; "User\u00a0" is an unknown key to it.
  {
    name: 'User=sigil is written with a no-break space before its =',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: dropIn('[Service]\nUser=root\nUser\u00a0=sigil\n'),
  },
  // Review defect 3: `[Service]]` is the unknown section "Service]".
  {
    name: 'User=sigil sits under a section header [Service]]',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: dropIn('[Service]\nUser=root\n[Service]]\nUser=sigil\n'),
  },
  // Review defect 3: a section header without its bracket ends systemd's reading of the file.
  {
    name: 'User=sigil follows a broken section header',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: dropIn('[Service]\nUser=root\n[Service\nUser=sigil\n'),
  },
  // Review defect 3: a line that is not UTF-8 ends systemd's reading of the file.
  {
    name: 'User=sigil follows a line that is not UTF-8',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: (r) => {
      put(r, DROPIN, '');
      writeFileSync(join(r, DROPIN), Buffer.concat([Buffer.from('[Service]\nUser=root\nX-Note='), Buffer.from([0xff]), Buffer.from('\nUser=sigil\n')]));
    },
  },
  // Review defect 3: systemd drops one byte-order mark only; a second makes the key "\ufeffUser".
  {
    name: 'User=sigil starts with a second byte-order mark',
    ids: ['unit.user'],
    reason: /User=root at .*zz\.conf:2/,
    mutate: dropIn('\ufeff[Service]\nUser=root\n\ufeffUser=sigil\n'),
  },
  // Review defect 3: an invalid user name is fatal to systemd, which stops reading the drop-in there.
  {
    name: 'User=sigil follows a User= name systemd rejects',
    ids: ['unit.user'],
    reason: /User=a:b at .*zz\.conf:3 is not a name systemd accepts .*: systemd stops reading the file there/,
    mutate: dropIn('[Service]\nUser=root\nUser=a:b\nUser=sigil\n'),
  },
  // Review defect 3: a continuation glues a tab into User=, which systemd rejects (found by comparing with systemd 252).
  {
    name: 'a continuation glues an indented User=sigil into User=',
    ids: ['unit.user'],
    reason: /User=r \tUser=sigil at .*zz\.conf:3 is not a name systemd accepts/,
    mutate: dropIn('[Service]\nUser=root\nUser=r\\\n\tUser=sigil\n'),
  },
  // unit.preload reads Environment= the way systemd splits it: quotes group, escapes are C escapes.
  {
    name: 'a drop-in preloads a library under a quoted, escaped variable name',
    ids: ['unit.preload'],
    reason: /LD_PRELOAD=\/opt\/evil\.so at .*zz\.conf:2: \/opt\/evil\.so is writable by group or others/,
    mutate: (r) => dropIn(`[Service]\nEnvironment="FOO=a b" 'LD_PRE'\\x4cOAD=${fakeLibrary(r, '/opt/evil.so', 0o666)}\n`)(r),
  },
  // unit.preload: systemd expands % specifiers in Environment=; check does not, so it cannot vouch.
  {
    name: 'a drop-in preloads a path with a % specifier',
    ids: ['unit.preload'],
    reason: /Environment=LD_PRELOAD=%h\/lib\.so at .*zz\.conf:2: LD_PRELOAD has a % specifier, which check does not expand/,
    mutate: dropIn('[Service]\nEnvironment=LD_PRELOAD=%h/lib.so\n'),
  },
  // unit.preload: every LD_PRELOAD assigned is judged, also one a later empty Environment= resets.
  {
    name: 'a drop-in preloads a library others can write and then resets Environment=',
    ids: ['unit.preload'],
    reason: /\/opt\/evil\.so is writable by group or others/,
    mutate: (r) => dropIn(`[Service]\nEnvironment=LD_PRELOAD=${fakeLibrary(r, '/opt/evil.so', 0o666)}\nEnvironment=\n`)(r),
  },
  // unit.preload reads EnvironmentFile= as systemd 254+ does: a comment ending in a backslash does not
  // swallow the next line, and a backslash before a newline continues a value.
  {
    name: 'the EnvironmentFile preloads a library after a comment ending in a backslash',
    ids: ['unit.preload'],
    reason: /LD_PRELOAD=\/opt\/evil\.so at \/etc\/sigil\/sigil\.env:2 \(EnvironmentFile=\): \/opt\/evil\.so is writable/,
    mutate: (r) => put(r, '/etc/sigil/sigil.env', `# the passphrase \\\nLD_PRELOAD=${fakeLibrary(r, '/opt/evil.so', 0o666)}\n`),
  },
  {
    name: 'the EnvironmentFile continues an LD_PRELOAD value on the next line',
    ids: ['unit.preload'],
    reason: /LD_PRELOAD=\/opt\/evil\.so at \/etc\/sigil\/sigil\.env:1 \(EnvironmentFile=\)/,
    mutate: (r) => {
      fakeLibrary(r, '/opt/evil.so', 0o666);
      put(r, '/etc/sigil/sigil.env', 'LD_PRELOAD=/opt/\\\nevil.so\n');
    },
  },
  {
    name: 'a drop-in names a second EnvironmentFile that preloads a library others can write',
    ids: ['unit.preload'],
    reason: /LD_PRELOAD=\/opt\/evil\.so at \/etc\/default\/sigil:1 \(EnvironmentFile=\): \/opt\/evil\.so is writable/,
    mutate: (r) => {
      put(r, '/etc/default/sigil', `LD_PRELOAD='${fakeLibrary(r, '/opt/evil.so', 0o666)}'\n`);
      dropIn('[Service]\nEnvironmentFile=-/etc/default/sigil\n')(r);
    },
  },

  // Review defect 3: the same parser reads coredump.conf.
  {
    name: 'a coredump.conf drop-in ends a line in an escaped backslash before Storage=external',
    ids: ['coredump.storage'],
    reason: /Storage=external at \/etc\/systemd\/coredump\.conf\.d\/zz\.conf:3, expected none/,
    mutate: (r) => put(r, '/etc/systemd/coredump.conf.d/zz.conf', '[Coredump]\nX-Note=\\\\\nStorage=external\n'),
  },
];

runControlCases(t, cases);

t.test('when a quote or escape in Environment= is one systemd rejects then unit.preload and unit.environment fail, and a valid escaped backslash passes', async (t) => {
  const root = await hardenedTree(t);
  put(root, DROPIN, '[Service]\nEnvironment="LD_PRELOAD=/opt/evil.so\n');
  let report = await runChecks({ root });
  t.same(failing(report), ['unit.preload', 'unit.environment'], 'neither can tell what it sets');
  t.match(reasonOf(report, 'unit.preload'), /a quote or escape systemd rejects; check cannot tell which variables it sets/);

  put(root, DROPIN, `[Service]\nEnvironment=A=b\\\\ "LD_PRELOAD=${fakeLibrary(root)}"\n`);
  report = await runChecks({ root });
  t.same(failing(report), []);
  t.match(reasonOf(report, 'unit.preload'), `${JEMALLOC} (jemalloc)`);
});

// Review defect 1: the top-level service.d comes after every unit-specific directory, even /usr/lib's.
t.test('when a service.d drop-in sets User=root then unit.user fails, unless a unit-specific drop-in of the same name hides it', async (t) => {
  const root = await hardenedTree(t);
  put(root, '/etc/systemd/system/service.d/10-a.conf', '[Service]\nUser=root\n');
  let report = await runChecks({ root });
  t.same(failing(report), ['unit.user'], 'the top-level drop-in is read');
  t.match(reasonOf(report, 'unit.user'), /User=root at \/etc\/systemd\/system\/service\.d\/10-a\.conf:2/, 'the reason names it');

  // Checked against systemd 252: a same-named file in any unit-specific directory hides the top-level one.
  put(root, '/usr/lib/systemd/system/sigil-server.service.d/10-a.conf', '[Service]\nUser=sigil\n');
  report = await runChecks({ root });
  t.same(failing(report), [], 'the unit-specific drop-in hides it');
});

// Review defect 1: a unit file emptied or linked to /dev/null first on the search path masks the unit.
t.test('when the unit file is emptied then every unit control fails naming the mask', async (t) => {
  const root = await hardenedTree(t);
  unlinkSync(join(root, UNIT));
  put(root, UNIT, '');
  const report = await runChecks({ root });
  t.ok(failing(report).includes('unit.present'), 'unit.present fails');
  t.ok(failing(report).every((id) => id.startsWith('unit.')), 'only unit controls fail');
  t.match(reasonOf(report, 'unit.user'), /sigil-server\.service is masked \(\/etc\/systemd\/system\/sigil-server\.service is empty or linked to \/dev\/null\)/, 'the reason names the mask');
});

// Review defect 2: the harmless prefixes still pass, the untouched apply tree too; "+" then fails.
t.test('when ExecStart= carries only - @ : then every control passes, and when it carries + then unit.present fails', async (t) => {
  const root = await hardenedTree(t);
  let report = await runChecks({ root });
  t.same(failing(report), [], 'the untouched apply tree passes every control');

  put(root, DROPIN, '[Service]\nExecStart=\nExecStart=-@:/usr/bin/node node /opt/sigil/dist/server/main.js start --data /var/lib/sigil\nExecStartPre=-/bin/true\n');
  report = await runChecks({ root });
  t.same(failing(report), [], 'the prefixes - @ : pass');

  put(root, DROPIN, '[Service]\nExecStartPre=:+/bin/true\n');
  report = await runChecks({ root });
  t.same(failing(report), ['unit.present'], 'a + among the prefixes of ExecStartPre= fails unit.present');
  t.match(reasonOf(report, 'unit.present'), /ExecStartPre=:\+\/bin\/true .*: the "\+" prefix runs it with full privileges/, 'the reason names it');
});
