// `deno task deb`: builds build/dxenstored_<version>_amd64.deb offline with dpkg-deb.
//
// Layout (docs/operations.md): the checkout's runnable subset under /usr/lib/dxenstored (bin/dxenstored,
// bin/deno, the Deno binary from node_modules, every module of src/cli/main.ts's import graph, the
// built-in policy plugins), /usr/sbin/dxenstored -> ../lib/dxenstored/bin/dxenstored, the conffiles
// /etc/xen/dxenstored.conf and /etc/logrotate.d/dxenstored, the disabled dxenstored.service, an
// inactive xen.service.d drop-in example, and maintainer scripts that never start or stop a daemon.
//
//   bin/deno task deb [--out DIR] [--compression gzip|xz|none] [--test]
//   bin/deno task deb:test          # build, then install into a throw-away Debian 12 and check it
//   bin/deno task deb:test-debootstrap   # the same in a fresh debootstrap'ed Debian 12 (minutes)
const ROOT = new URL("../", import.meta.url).pathname;
const DEB = `${ROOT}packaging/debian`;
const LIB = "usr/lib/dxenstored";
const DENO_BIN = "node_modules/@deno/linux-x64-glibc/deno";
const dec = new TextDecoder();

interface BuildOptions {
  readonly out: string;
  readonly compression: "gzip" | "xz" | "none";
  /** Then install it into a throw-away Debian 12: this host's root, or a debootstrap'ed one. */
  readonly test: boolean | "debootstrap";
}

function parse(argv: readonly string[]): BuildOptions {
  let out = `${ROOT}build`;
  let compression: BuildOptions["compression"] = "gzip";
  let test: BuildOptions["test"] = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--out") out = argv[++i];
    else if (a === "--test") test = true;
    else if (a === "--test-debootstrap") test = "debootstrap";
    else if (a === "--compression") {
      const c = argv[++i];
      if (c !== "gzip" && c !== "xz" && c !== "none") throw new Error(`--compression: gzip, xz or none`);
      compression = c;
    } else throw new Error(`unknown argument "${a}"`);
  }
  return { out, compression, test };
}

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const o = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

function copy(from: string, to: string, mode: number): void {
  Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  Deno.copyFileSync(from, to);
  Deno.chmodSync(to, mode);
}

/** Local modules of the daemon's import graph (what `deno run src/cli/main.ts` loads), repo-relative. */
async function moduleFiles(): Promise<string[]> {
  const info = JSON.parse(await run(`${ROOT}bin/deno`, ["info", "--json", "src/cli/main.ts"]));
  const prefix = new URL(ROOT, "file://").href;
  const files: string[] = [];
  for (const m of info.modules as Array<{ specifier: string }>) {
    if (!m.specifier.startsWith("file://")) throw new Error(`non-local module in the daemon: ${m.specifier}`);
    if (!m.specifier.startsWith(prefix)) throw new Error(`module outside the repository: ${m.specifier}`);
    files.push(decodeURIComponent(m.specifier.slice(prefix.length)));
  }
  return files.sort();
}

/**
 * npm packages the daemon imports at run time through "npm:<name>@<version>" strings in its modules
 * (dynamic imports, which `deno info` does not follow), with their dependencies: node_modules paths.
 */
function runtimeNpmPackages(moduleFiles: readonly string[]): string[] {
  const wanted: string[] = [];
  for (const f of moduleFiles) {
    for (
      const m of Deno.readTextFileSync(`${ROOT}${f}`).matchAll(/"npm:((?:@[a-z0-9._-]+\/)?[a-z0-9._-]+)@/g)
    ) {
      wanted.push(m[1]);
    }
  }
  const seen = new Set<string>();
  while (wanted.length > 0) {
    const name = wanted.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const pj = JSON.parse(Deno.readTextFileSync(`${ROOT}node_modules/${name}/package.json`));
    wanted.push(...Object.keys(pj.dependencies ?? {}));
  }
  return [...seen].sort().map((n) => `node_modules/${n}`);
}

/** Every .wasm file under `dir` (repo-relative), iteratively. */
function wasmFiles(dir: string): string[] {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(`${ROOT}${d}`)];
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isDirectory && e.name !== "node_modules") stack.push(`${d}/${e.name}`);
      else if (e.isFile && e.name.endsWith(".wasm")) out.push(`${d}/${e.name}`);
    }
  }
  return out.sort();
}

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (e.isDirectory) copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) copy(`${from}/${e.name}`, `${to}/${e.name}`, 0o644);
  }
}

export async function buildDeb(o: BuildOptions): Promise<string> {
  const pkg = JSON.parse(Deno.readTextFileSync(`${ROOT}package.json`));
  const version = `${pkg.version}-1`;
  const stage = await Deno.makeTempDir({ prefix: "dxenstored-deb-" });
  Deno.chmodSync(stage, 0o755); // the archive's "./" entry
  try {
    // The runtime: the checkout's entry points and Deno, as bin/dxenstored expects them.
    copy(`${ROOT}bin/dxenstored`, `${stage}/${LIB}/bin/dxenstored`, 0o755);
    copy(`${ROOT}bin/deno`, `${stage}/${LIB}/bin/deno`, 0o755);
    copy(`${ROOT}${DENO_BIN}`, `${stage}/${LIB}/${DENO_BIN}`, 0o755);
    for (const f of ["deno.json", "package.json"]) copy(`${ROOT}${f}`, `${stage}/${LIB}/${f}`, 0o644);
    const modules = await moduleFiles();
    for (const f of modules) copy(`${ROOT}${f}`, `${stage}/${LIB}/${f}`, 0o644);
    for (const d of runtimeNpmPackages(modules)) copyTree(`${ROOT}${d}`, `${stage}/${LIB}/${d}`);
    // The built-in policy plugins (src/policy/loader.ts reads them next to the sources).
    for (const f of wasmFiles("policies")) copy(`${ROOT}${f}`, `${stage}/${LIB}/${f}`, 0o644);
    // Marks the installed tree: bin/dxenstored then keeps Deno's cache in /var/cache/dxenstored.
    Deno.writeTextFileSync(`${stage}/${LIB}/PACKAGED`, `dxenstored ${version}\n`);
    Deno.mkdirSync(`${stage}/usr/sbin`, { recursive: true });
    Deno.symlinkSync(`../lib/dxenstored/bin/dxenstored`, `${stage}/usr/sbin/dxenstored`);
    Deno.mkdirSync(`${stage}/var/cache/dxenstored`, { recursive: true });
    // Configuration, units, documentation.
    copy(`${DEB}/dxenstored.conf`, `${stage}/etc/xen/dxenstored.conf`, 0o644);
    copy(`${DEB}/logrotate`, `${stage}/etc/logrotate.d/dxenstored`, 0o644);
    copy(`${DEB}/dxenstored.service`, `${stage}/lib/systemd/system/dxenstored.service`, 0o644);
    const doc = `${stage}/usr/share/doc/dxenstored`;
    copy(
      `${DEB}/examples/xen.service.d/dxenstored.conf`,
      `${doc}/examples/xen.service.d/dxenstored.conf`,
      0o644,
    );
    copy(`${ROOT}docs/operations.md`, `${doc}/operations.md`, 0o644);
    copy(`${DEB}/copyright`, `${doc}/copyright`, 0o644);
    // Control area.
    Deno.mkdirSync(`${stage}/DEBIAN`);
    const sizeKb = Number((await run("du", ["-sk", "--exclude=DEBIAN", stage])).split("\t")[0]);
    Deno.writeTextFileSync(
      `${stage}/DEBIAN/control`,
      Deno.readTextFileSync(`${DEB}/control.in`).replace("@VERSION@", version).replace(
        "@SIZE@",
        String(sizeKb),
      ),
    );
    Deno.writeTextFileSync(
      `${stage}/DEBIAN/conffiles`,
      "/etc/xen/dxenstored.conf\n/etc/logrotate.d/dxenstored\n",
    );
    for (const s of ["postinst", "postrm"]) copy(`${DEB}/${s}`, `${stage}/DEBIAN/${s}`, 0o755);
    const md5 = await run("bash", [
      "-c",
      "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum",
    ], stage);
    Deno.writeTextFileSync(`${stage}/DEBIAN/md5sums`, md5);
    Deno.mkdirSync(o.out, { recursive: true });
    const deb = `${o.out}/dxenstored_${version}_amd64.deb`;
    const z = o.compression === "none" ? ["-Znone"] : o.compression === "xz" ? ["-Zxz"] : ["-Zgzip", "-z1"];
    await run("dpkg-deb", ["--root-owner-group", ...z, "--build", stage, deb]);
    return deb;
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    const o = parse(Deno.args);
    const deb = await buildDeb(o);
    console.log(deb);
    if (o.test) {
      const st = await new Deno.Command("bash", { args: [`${ROOT}packaging/test-install.sh`, deb] }).spawn()
        .status;
      Deno.exit(st.code);
    }
  } catch (e) {
    console.error(`build_deb: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
