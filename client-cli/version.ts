/** The CLI's version; `packaging/make-dist.mjs` checks it against package.json. */
export const VERSION = '0.1.0';
