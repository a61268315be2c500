// The C storage modules for tests: built on first use (backends/build.ts), so a fresh clone needs
// only gcc and liblmdb-dev (.ci/run and bin/test install them).
import { ensureModule, ModuleBuildError, type ModuleName, MODULES } from "../../backends/build.ts";

/**
 * The module's shared object, or null (with a warning) where it cannot be built here. In CI a
 * missing build is an error: .ci/run installs what the modules need.
 */
export async function moduleOrSkip(name: ModuleName): Promise<string | null> {
  try {
    return await ensureModule(MODULES[name]);
  } catch (e) {
    if (!(e instanceof ModuleBuildError) || Deno.env.get("CI")) throw e;
    console.warn(`storage module ${name} cannot be built here: tests using it are skipped\n${e.message}`);
    return null;
  }
}
