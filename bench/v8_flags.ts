// The daemon's V8 flags (compile/v8-flags: one per line, '#' comments), for starting it from bench/
// exactly as the entry points do.
const FILE = new URL("../compile/v8-flags", import.meta.url).pathname;

/** The flags of `text` (the file's format): blank lines and comments dropped. */
export function parseV8Flags(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l.length > 0);
}

/** The daemon's flags, or [] if the file is missing. */
export function daemonV8Flags(file = FILE): string[] {
  try {
    return parseV8Flags(Deno.readTextFileSync(file));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** `--v8-flags=a,b,c` for `deno run`, or nothing when there are none. */
export function v8FlagsArgs(flags = daemonV8Flags()): string[] {
  return flags.length === 0 ? [] : [`--v8-flags=${flags.join(",")}`];
}

/** The environment that gives a `deno run` of the daemon these flags (bin/dxenstored passes it on). */
export function dxenstoredEnv(flags = daemonV8Flags()): Record<string, string> {
  return flags.length === 0 ? {} : { DENO_V8_FLAGS: flags.join(",") };
}
