/** Types of make-dist.mjs for the TypeScript tests that import it. */
export const FORBIDDEN_PACKAGES: string[];
export function importGraph(entry?: string): { files: string[]; packages: string[] };
export function packageClosure(names: string[], fromDir?: string): Map<string, string>;
export function nativeProblems(dir: string, name: string): string[];
export function makeDist(opts?: { outDir?: string }): { archive: string; stage: string; files: number; packages: string[] };
