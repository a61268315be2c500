// Builds the built-in policy plugins into policies/wasm/ (`deno task policies`):
//   AssemblyScript plugins (policies/<name>/index.ts) with asc from npm (assemblyscript, @extism/as-pdk);
//   C plugins (policies/c/<name>.c) with Debian's clang-14 and lld-14, freestanding (no libc, no WASI).
// The .wasm files are committed, so neither tests nor CI need the toolchains; policies/wasm/SOURCES
// records the sha256 of every source a build used, and tests/policy/build_test.ts fails when a source
// changed without a rebuild.
const root = new URL("..", import.meta.url).pathname;
const AS_PLUGINS = ["legacy", "chinese-wall", "strict-protocol"];
const C_PLUGINS = ["maintenance"];
const AS_FLAGS = ["--use", "abort=policies/common/abi/abortPlugin", "-O3", "--noAssert"];
/**
 * AssemblyScript runtime per plugin: "stub" never frees, fine for plugins that allocate nothing per call
 * (legacy, strict-protocol); chinese-wall uses strings per call and needs the incremental GC.
 */
const AS_RUNTIME: Record<string, string> = { "chinese-wall": "incremental" };
const asFlags = (name: string) => [...AS_FLAGS, "--runtime", AS_RUNTIME[name] ?? "stub"];
const C_FLAGS = [
  "--target=wasm32-unknown-unknown",
  "-O2",
  "-nostdlib",
  "-fuse-ld=lld",
  "-Wall",
  "-Werror",
  "-Wl,--no-entry",
  "-Wl,--allow-undefined",
  "-Wl,--export=policy_info",
  "-Wl,--export=policy_decide",
  "-Wl,--max-memory=1048576",
];

/** The sources each plugin is built from (what SOURCES hashes). */
export function pluginSources(name: string): string[] {
  if (C_PLUGINS.includes(name)) return [`policies/c/${name}.c`, "policies/c/policy_abi.h"];
  return [`policies/${name}/index.ts`, "policies/common/abi.ts"];
}

export const ALL_PLUGINS = [...AS_PLUGINS, ...C_PLUGINS];

export async function sourceHash(name: string): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const f of pluginSources(name)) parts.push(enc.encode(`${f}\0`), Deno.readFileSync(`${root}${f}`));
  parts.push(enc.encode((C_PLUGINS.includes(name) ? C_FLAGS : asFlags(name)).join(" ")));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd: root, stdout: "inherit", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

if (import.meta.main) {
  const only = Deno.args.length > 0 ? Deno.args : ALL_PLUGINS;
  for (const name of only) {
    const out = `policies/wasm/${name}.wasm`;
    if (C_PLUGINS.includes(name)) {
      await run("clang-14", [...C_FLAGS, "-o", out, `policies/c/${name}.c`]);
    } else if (AS_PLUGINS.includes(name)) {
      await run("node", [
        "node_modules/assemblyscript/bin/asc.js",
        `policies/${name}/index.ts`,
        "--outFile",
        out,
        ...asFlags(name),
      ]);
    } else {
      throw new Error(`unknown plugin ${name}; known: ${ALL_PLUGINS.join(", ")}`);
    }
    console.log(`built ${out} (${Deno.statSync(`${root}${out}`).size} bytes)`);
  }
  // Only the plugins just built get their source hash updated.
  const manifest = readManifest();
  for (const name of only) manifest.set(name, await sourceHash(name));
  const lines = [...manifest].sort(([a], [b]) => a.localeCompare(b)).map(([n, h]) => `${h}  ${n}`);
  Deno.writeTextFileSync(`${root}policies/wasm/SOURCES`, lines.join("\n") + "\n");
}

/** policies/wasm/SOURCES: plugin name → sha256 of the sources its committed .wasm was built from. */
export function readManifest(): Map<string, string> {
  const m = new Map<string, string>();
  try {
    for (const line of Deno.readTextFileSync(`${root}policies/wasm/SOURCES`).split("\n")) {
      const [h, n] = line.split(/\s+/);
      if (h && n) m.set(n, h);
    }
  } catch { /* first build */ }
  return m;
}
