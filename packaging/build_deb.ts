// `deno task deb`: builds build/dxenstored_<version>_amd64.deb offline with dpkg-deb.
//
// Layout (docs/operations.md): the built program (compile/build.ts: one JavaScript file holding the
// daemon, its npm packages and the built-in policy plugins) and the Deno binary that runs it under
// /usr/lib/dxenstored; /usr/sbin/dxenstored, a launcher that execs Deno as `dxenstored` with the V8
// flags of compile/v8-flags (and /usr/bin/dxenstore, the client, and /usr/bin/dxenstore-guest, the
// guest CLI, the same way); the man page
// dxenstored(8) generated from the option table; the conffiles /etc/xen/dxenstored.conf and
// /etc/logrotate.d/dxenstored, the disabled dxenstored.service, an inactive xen.service.d drop-in
// example, operations.md and the documents it links to; maintainer scripts that never start or stop
// a daemon. No source tree, no node_modules.
//
//   bin/deno task deb [--out DIR] [--compression gzip|xz|none] [--test]
//   bin/deno task deb:test          # build, then install into a throw-away Debian 12 and check it
//   bin/deno task deb:test-debootstrap   # the same in a fresh debootstrap'ed Debian 12 (minutes)
import { build } from "../compile/build.ts";
import { CLIENT_NAME, GUEST_NAME, launcherScript, PROGRAM_NAME } from "../compile/program.ts";
import { readV8Flags } from "../compile/v8_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DEB = `${ROOT}packaging/debian`;
const LIB = "usr/lib/dxenstored";
const DENO_BIN = "node_modules/@deno/linux-x64-glibc/deno";
/** Deno's cache (V8's code cache of the program) for the installed daemon; purged with the package. */
export const CACHE_DIR = "/var/cache/dxenstored";
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

/** operations.md and every document it links to, transitively (docs/-relative names). */
export function shippedDocs(): string[] {
  const todo = ["operations.md"];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const doc = todo.pop()!;
    if (seen.has(doc)) continue;
    seen.add(doc);
    for (const target of docLinks(Deno.readTextFileSync(`${ROOT}docs/${doc}`))) todo.push(target);
  }
  return [...seen].sort();
}

/** The local documents a markdown text links to ([text](name.md#anchor)). */
export function docLinks(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(([^()\s#]+)(#[^()\s]*)?\)/g)) {
    if (!/^[a-z]+:/.test(m[1])) out.push(m[1]);
  }
  return out;
}

export async function buildDeb(o: BuildOptions): Promise<string> {
  const pkg = JSON.parse(Deno.readTextFileSync(`${ROOT}package.json`));
  const version = `${pkg.version}-1`;
  const stage = await Deno.makeTempDir({ prefix: "dxenstored-deb-" });
  Deno.chmodSync(stage, 0o755); // the archive's "./" entry
  try {
    // The program: one JavaScript file, and the Deno binary that runs it.
    const program = await build(`${stage}/.program`);
    copy(program.bundle, `${stage}/${LIB}/dxenstored.js`, 0o644);
    copy(`${ROOT}${DENO_BIN}`, `${stage}/${LIB}/deno`, 0o755);
    const v8Flags = readV8Flags();
    for (
      const [name, dir] of [[PROGRAM_NAME, "usr/sbin"], [CLIENT_NAME, "usr/bin"], [GUEST_NAME, "usr/bin"]]
    ) {
      Deno.mkdirSync(`${stage}/${dir}`, { recursive: true });
      Deno.writeTextFileSync(
        `${stage}/${dir}/${name}`,
        launcherScript({
          deno: `/${LIB}/deno`,
          program: `/${LIB}/dxenstored.js`,
          v8Flags,
          name,
          env: { DENO_DIR: CACHE_DIR },
          comment:
            `${name} ${version}: runs /${LIB}/dxenstored.js as this very process (exec, argv[0] ${name}).\n` +
            "Generated by packaging/build_deb.ts; the V8 flags are compile/v8-flags'.",
        }),
      );
      Deno.chmodSync(`${stage}/${dir}/${name}`, 0o755);
    }
    Deno.mkdirSync(`${stage}${CACHE_DIR}`, { recursive: true });
    // The man page, generated from the option table (compile/manpage.ts).
    Deno.mkdirSync(`${stage}/usr/share/man/man8`, { recursive: true });
    await run("bash", [
      "-c",
      `gzip -9n < "$0" > "$1"`,
      program.manPage,
      `${stage}/usr/share/man/man8/dxenstored.8.gz`,
    ]);
    Deno.chmodSync(`${stage}/usr/share/man/man8/dxenstored.8.gz`, 0o644);
    await Deno.remove(`${stage}/.program`, { recursive: true });
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
    for (const d of shippedDocs()) copy(`${ROOT}docs/${d}`, `${doc}/${d}`, 0o644);
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
