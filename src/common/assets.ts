// Files the daemon needs at run time that are not code (the built-in policy plugins' .wasm), by their
// path in the repository. From a checkout they are read beside the sources; the built program
// (compile/build.ts) embeds every one of them before main() runs, so it reads nothing from a source
// tree and runs from any directory with only the deno binary. This is the one module allowed to look
// at import.meta.url for files: compile/build.ts refuses a bundle where any other module does.

/** Embedded assets: repository path -> base64 (decoded on first use, then kept). */
const embedded = new Map<string, string | Uint8Array>();
let isBuilt = false;

/**
 * Called once by the built program's generated entry (compile/build.ts), before main(): from then on
 * every asset comes from here, and one that is missing is an error rather than a read beside the
 * program.
 */
export function embedAssets(files: Readonly<Record<string, string>>): void {
  isBuilt = true;
  for (const [path, base64] of Object.entries(files)) embedded.set(path, base64);
}

/** True in the built program (compile/build.ts), false when run from the sources. */
export function isBuiltProgram(): boolean {
  return isBuilt;
}

export class AssetError extends Error {
  override name = "AssetError";
}

/** The bytes of `path` (repository-relative, e.g. "policies/wasm/legacy.wasm"). Throws AssetError. */
export function readAsset(path: string): Uint8Array {
  const e = embedded.get(path);
  if (e instanceof Uint8Array) return e;
  if (e !== undefined) {
    const bytes = fromBase64(e);
    embedded.set(path, bytes);
    return bytes;
  }
  if (isBuilt) throw new AssetError(`${path} is not embedded in this program (compile/build.ts)`);
  const file = new URL(`../../${path}`, import.meta.url);
  try {
    return Deno.readFileSync(file);
  } catch (err) {
    throw new AssetError(`cannot read ${file.pathname}: ${(err as Error).message}`);
  }
}

/** Where `path` comes from, for messages: "built in" or the file beside the sources. */
export function assetOrigin(path: string): string {
  return isBuilt ? `${path} (built in)` : new URL(`../../${path}`, import.meta.url).pathname;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
