// Builds the client library as an npm package (ES modules + .d.ts) that Node ≥ 20 imports:
//
//   bin/deno task client:npm [OUT_DIR]        (default build/npm/dxenstore-client)
//
// The package holds exactly the module graph of src/client/mod.ts — the client and the pure protocol
// modules it imports (codec, wire, ring, Latin-1, errno names) — compiled by TypeScript with `.ts`
// imports rewritten to `.js`, in the same folder layout. TypeScript is a build tool only: it is
// installed (pinned) into .build/npm-tools on first use, not into the project's dependencies.
const ROOT = new URL("../../../", import.meta.url).pathname;
const TS_VERSION = "5.9.3";
const TOOLS = `${ROOT}.build/npm-tools`;
const dec = new TextDecoder();

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const o = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = dec.decode(o.stdout) + dec.decode(o.stderr);
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

async function tsc(): Promise<string> {
  const bin = `${TOOLS}/node_modules/typescript/bin/tsc`;
  try {
    await Deno.stat(bin);
  } catch {
    await Deno.mkdir(TOOLS, { recursive: true });
    await run("npm", [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--prefix",
      TOOLS,
      `typescript@${TS_VERSION}`,
    ]);
  }
  return bin;
}

/** The local modules src/client/mod.ts imports, as paths relative to src/. */
async function moduleGraph(): Promise<string[]> {
  const info = JSON.parse(await run(Deno.execPath(), ["info", "--json", "src/client/mod.ts"]));
  const src = `file://${ROOT}src/`;
  const files: string[] = [];
  for (const m of info.modules as Array<{ specifier: string }>) {
    if (!m.specifier.startsWith(src)) throw new Error(`the client imports ${m.specifier}, outside src/`);
    files.push(m.specifier.slice(src.length));
  }
  return files;
}

export async function buildPackage(out = `${ROOT}build/npm/dxenstore-client`): Promise<string> {
  const version = JSON.parse(await Deno.readTextFile(`${ROOT}package.json`)).version as string;
  const stage = await Deno.makeTempDir({ prefix: "dxs-npm-" });
  try {
    const files = await moduleGraph();
    for (const f of files) {
      await Deno.mkdir(`${stage}/src/${f.replace(/\/[^/]*$/, "")}`, { recursive: true });
      await Deno.copyFile(`${ROOT}src/${f}`, `${stage}/src/${f}`);
    }
    await Deno.writeTextFile(
      `${stage}/tsconfig.json`,
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2023", "ESNext.Disposable", "DOM"],
          strict: true,
          declaration: true,
          rewriteRelativeImportExtensions: true,
          allowImportingTsExtensions: false,
          rootDir: "src",
          outDir: "out",
          skipLibCheck: true,
        },
        files: files.map((f) => `src/${f}`),
      }),
    );
    await Deno.writeTextFile(`${stage}/package.json`, JSON.stringify({ type: "module" }));
    await run("node", [await tsc(), "-p", `${stage}/tsconfig.json`], stage);
    await Deno.remove(out, { recursive: true }).catch(() => {});
    await Deno.mkdir(out, { recursive: true });
    await run("cp", ["-r", `${stage}/out/.`, out]);
    await Deno.writeTextFile(
      `${out}/package.json`,
      JSON.stringify(
        {
          name: "dxenstore-client",
          version,
          description:
            "XenStore client: dom0 socket, guest ring; pipelining, transactions, watches as async iterators",
          type: "module",
          main: "./client/mod.js",
          types: "./client/mod.d.ts",
          exports: { ".": { types: "./client/mod.d.ts", default: "./client/mod.js" } },
          engines: { node: ">=20" },
          license: "MIT",
          files: ["**/*.js", "**/*.d.ts"],
        },
        null,
        2,
      ) + "\n",
    );
    await Deno.copyFile(`${ROOT}docs/client.md`, `${out}/README.md`).catch(() => {});
    return out;
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const out = await buildPackage(Deno.args[0]);
  console.log(`built ${out}`);
}
