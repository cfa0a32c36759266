/**
 * Failure modes of hardening/: each class has a stable `code` and keeps its `cause`. These are errors
 * of the tool itself (bad flags, bad configuration, unreadable files); a host that is not hardened is
 * not an error but a failing control in the report.
 */

/** `--root` does not name a directory. */
export class RootNotDirectoryError extends Error {
  readonly code = 'ROOT_NOT_DIRECTORY';
  constructor(readonly root: string, options?: { cause?: unknown }) {
    super(`--root expects a directory standing for a host's /; "${root}" is not one`, options);
    this.name = 'RootNotDirectoryError';
  }
}

/** `/etc/sigil/hardening.conf` (or `--conf`) does not exist. */
export class HardeningConfMissingError extends Error {
  readonly code = 'HARDENING_CONF_MISSING';
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`no hardening configuration at ${path} (start from hardening/hardening.conf.example)`, options);
    this.name = 'HardeningConfMissingError';
  }
}

/** `hardening.conf` has a line or a value that does not parse. */
export class HardeningConfInvalidError extends Error {
  readonly code = 'HARDENING_CONF_INVALID';
  constructor(readonly path: string, readonly detail: string, options?: { cause?: unknown }) {
    super(`invalid hardening configuration ${path}: ${detail}`, options);
    this.name = 'HardeningConfInvalidError';
  }
}

/** A CIDR (or address) that is not `a.b.c.d/n`, `v6/n` or a literal address. */
export class CidrInvalidError extends Error {
  readonly code = 'CIDR_INVALID';
  constructor(readonly value: string, options?: { cause?: unknown }) {
    super(`expected a CIDR such as 10.0.0.0/8 or fd00::/8, got "${value}"`, options);
    this.name = 'CidrInvalidError';
  }
}

/** An address range (`first-last`, as nftables writes one) that is malformed or reversed. */
export class RangeInvalidError extends Error {
  readonly code = 'RANGE_INVALID';
  constructor(readonly value: string, readonly detail: string, options?: { cause?: unknown }) {
    super(`address range "${value}" is not valid: ${detail}`, options);
    this.name = 'RangeInvalidError';
  }
}

/** An nftables file whose blocks do not balance, so its structure cannot be read. */
export class NftSyntaxError extends Error {
  readonly code = 'NFT_SYNTAX';
  constructor(readonly source: string, readonly detail: string, options?: { cause?: unknown }) {
    super(`cannot read nftables ruleset ${source}: ${detail}`, options);
    this.name = 'NftSyntaxError';
  }
}

/** A directory to search for programs (`Host`'s `programDirs`) that is not an absolute path. */
export class ProgramDirInvalidError extends Error {
  readonly code = 'PROGRAM_DIR_INVALID';
  constructor(readonly dir: string, options?: { cause?: unknown }) {
    super(`programs are looked for in absolute directories only, got "${dir}"`, options);
    this.name = 'ProgramDirInvalidError';
  }
}
