// `deno task compile`: the built program (build/dxenstored.js, compile/build.ts) as one executable,
// build/dxenstored, with `deno compile`: the same bundle, the same permissions and the V8 flags of
// compile/v8-flags, on Deno's runtime (denort) instead of the full deno binary. Named dxenstored, it
// is `dxenstored` to pidof and pgrep by itself; linked as dxenstore or dxenstore-guest it is the client
// or the guest CLI.
//
//   bin/deno task compile [--print]      (--print: only show the command)
//
// `deno compile` needs denort of exactly this Deno version, which it downloads from Deno's release
// host unless DENORT_BIN names a copy. Where that host cannot be reached (as on the development
// machine), fetch it elsewhere and point DENORT_BIN at it (docs/operations.md, "A single executable"):
//
//   curl -LO https://dl.deno.land/release/v<VERSION>/denort-x86_64-unknown-linux-gnu.zip
//   unzip denort-x86_64-unknown-linux-gnu.zip          # -> denort
//   DENORT_BIN=$PWD/denort bin/deno task compile
import { build } from "./build.ts";
import { BUNDLE, CLIENT_NAME, DENO_RUN_FLAGS, EXECUTABLE, GUEST_NAME } from "./program.ts";
import { readV8Flags, v8FlagsArgs } from "./v8_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** The Deno (and so denort) version the program is built for: package.json's pinned "deno". */
export function denoVersion(): string {
  return JSON.parse(Deno.readTextFileSync(`${ROOT}package.json`)).dependencies.deno;
}

/** Where denort of `version` is published (what `deno compile` downloads when DENORT_BIN is unset). */
export function denortUrl(version: string): string {
  return `https://dl.deno.land/release/v${version}/denort-x86_64-unknown-linux-gnu.zip`;
}

/**
 * The `deno compile` arguments for `bundle` -> `output`: the run flags of the built program
 * (compile/program.ts: permissions, no config, lock, remote or npm lookups) except --quiet, which is a
 * compile-time flag here too, and the V8 flags.
 */
export function compileArgs(bundle: string, output: string, v8Flags: readonly string[]): string[] {
  return ["compile", ...v8FlagsArgs(v8Flags), ...DENO_RUN_FLAGS, "--output", output, bundle];
}

async function main(): Promise<number> {
  const bundle = `${ROOT}${BUNDLE}`;
  const output = `${ROOT}${EXECUTABLE}`;
  const args = compileArgs(bundle, output, readV8Flags());
  if (Deno.args.includes("--print")) {
    console.log([Deno.execPath(), ...args].join(" "));
    return 0;
  }
  const r = await build();
  console.log(`${r.bundle}: ${(r.bytes / 1024).toFixed(0)} KiB`);
  const denort = Deno.env.get("DENORT_BIN");
  console.log(`deno ${args.join(" ")}${denort ? `   (DENORT_BIN=${denort})` : ""}`);
  const st = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  if (!st.success) {
    if (!denort) {
      console.error(
        `compile: deno compile failed; it needs denort ${denoVersion()} from ${denortUrl(denoVersion())}\n` +
          `  fetch and unzip it where that host is reachable, then: DENORT_BIN=/path/to/denort bin/deno task compile`,
      );
    }
    return 1;
  }
  // The other programs of the multi-call executable (compile/entry.ts): links named after them.
  for (const name of [CLIENT_NAME, GUEST_NAME]) {
    const link = `${ROOT}build/${name}`;
    await Deno.remove(link).catch(() => {});
    Deno.symlinkSync(EXECUTABLE.slice(EXECUTABLE.lastIndexOf("/") + 1), link);
  }
  console.log(`${output} (and build/${CLIENT_NAME}, build/${GUEST_NAME} -> dxenstored)`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
