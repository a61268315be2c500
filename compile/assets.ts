// The files the built program embeds (src/common/assets.ts reads them beside the sources in a
// checkout): every built-in policy plugin. A new kind of asset is added here and read through
// readAsset(); compile/build.ts refuses a bundle that reads files any other way.
import { BUILTIN_PLUGINS, builtinPluginAsset } from "../src/policy/loader.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Repository path -> bytes of every asset the program reads at run time. */
export function embedAssetList(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of BUILTIN_PLUGINS) {
    const path = builtinPluginAsset(name);
    out[path] = Deno.readFileSync(`${ROOT}${path}`);
  }
  return out;
}
