/**
 * Builds the dom0 overlay for the real-Xen E2E (copied over dom0's initramfs root by
 * ../shared/xen-qemu/build.sh through EXTRA_DOM0_DIR):
 *
 *   /init                          tests/xen/qemu/dom0/init.sh (the scenarios of one boot)
 *   /e2e/guest-overlay.cpio.gz     the guests' /init (tests/xen/qemu/guest/init.sh) and /usr/bin/xse2e;
 *                                  dom0 appends it to the shared guest initramfs at boot
 *   /opt/dxenstored/               only when dxenstored is under test: the Deno binary from
 *                                  node_modules, src/ and ffi/ as TypeScript, built policy plugins (*.wasm),
 *                                  npm packages the daemon imports (with a minimal deno.json and
 *                                  package.json: node_modules resolution, no network), and /opt/dxenstored/run
 *   /usr/bin/strace                only for the performance plan (P): the host's strace (Debian bookworm,
 *                                  as dom0) and the libraries it needs beyond glibc
 */
import { run } from "./proc.ts";

export interface DaemonCli {
  /** Flags the daemon's --help mentions (the CLI is being extended by other issues). */
  readonly flags: ReadonlySet<string>;
}

export interface PackageOptions {
  readonly root: string;
  readonly overlay: string;
  /** Package dxenstored (false: the image is only for the reference daemons). */
  readonly withDaemon: boolean;
  /** Extra daemon arguments (--daemon-arg). */
  readonly daemonArgs: readonly string[];
  /** Add strace (plan P counts the daemon's system calls). */
  readonly withStrace?: boolean;
}

export const DENO_BIN = "node_modules/@deno/linux-x64-glibc/deno";
export const DAEMON_RUN = "/opt/dxenstored/run";

/** Asks the daemon on the host which flags it has: --xen, --no-fork, --backend... */
export async function daemonCli(root: string): Promise<DaemonCli> {
  const r = await run([
    `${root}/${DENO_BIN}`,
    "run",
    "--allow-all",
    "--quiet",
    `${root}/src/cli/main.ts`,
    "--help",
  ], {
    cwd: root,
  });
  const text = r.stdout + r.stderr;
  return { flags: new Set(text.match(/--[a-z][a-z-]*/g) ?? []) };
}

/** The daemon's command line in dom0: a dom0 xenstored with the real Xen platform and a persistent store. */
export function daemonArgs(cli: DaemonCli, extra: readonly string[]): string[] {
  const args = ["--socket", "/run/xenstored/socket"];
  if (cli.flags.has("--xen")) args.push("--xen=real");
  if (cli.flags.has("--backend")) args.push("--backend", "file:/var/lib/xenstored/dxenstored");
  if (cli.flags.has("--no-fork")) args.push("--no-fork"); // init.sh runs it as a background job
  return [...args, ...extra];
}

export async function buildOverlay(opts: PackageOptions): Promise<{ daemonCommand?: string }> {
  const { root, overlay } = opts;
  await Deno.remove(overlay, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${overlay}/e2e`, { recursive: true });
  await Deno.copyFile(`${root}/tests/xen/qemu/dom0/init.sh`, `${overlay}/init`);
  await Deno.chmod(`${overlay}/init`, 0o755);

  // the guests' overlay: /init and the static raw-protocol client
  const g = `${overlay}/.guest`;
  await Deno.mkdir(`${g}/usr/bin`, { recursive: true });
  await Deno.copyFile(`${root}/tests/xen/qemu/guest/init.sh`, `${g}/init`);
  await Deno.chmod(`${g}/init`, 0o755);
  const cc = await run([
    "gcc",
    "-O2",
    "-Wall",
    "-static",
    "-o",
    `${g}/usr/bin/xse2e`,
    `${root}/tests/xen/qemu/guest/xse2e.c`,
  ]);
  if (!cc.ok) throw new Error(`compiling xse2e failed:\n${cc.stderr}`);
  const cpio = await run([
    "sh",
    "-c",
    "cd .guest && find . | cpio -o -H newc -R 0:0 --quiet | gzip -6 > ../e2e/guest-overlay.cpio.gz",
  ], {
    cwd: overlay,
  });
  if (!cpio.ok) throw new Error(`guest overlay cpio failed:\n${cpio.stderr}`);
  await Deno.remove(g, { recursive: true });
  if (opts.withStrace) await addStrace(overlay);

  if (!opts.withDaemon) return {};
  const opt = `${overlay}/opt/dxenstored`;
  await Deno.mkdir(opt, { recursive: true });
  await Deno.copyFile(`${root}/${DENO_BIN}`, `${opt}/deno`);
  await Deno.chmod(`${opt}/deno`, 0o755);
  // the daemon's TypeScript: src/ and the FFI bindings it imports (ffi/*.ts)
  await copyTree(`${root}/src`, `${opt}/src`, (p) => p.endsWith(".ts"));
  await copyTree(`${root}/ffi`, `${opt}/ffi`, (p) => p.endsWith(".ts")).catch(() => {});
  // built policy plugins, where they exist (the WebAssembly policy issue ships them as .wasm)
  await copyTree(`${root}/policies`, `${opt}/policies`, (p) => p.endsWith(".wasm")).catch(() => {});
  // npm packages the daemon imports (e.g. the Extism SDK, loaded at run time by its npm: specifier):
  // copied with their dependencies; a minimal deno.json/package.json resolves them from node_modules
  // (dom0 has no network)
  const npm = await npmPackages(root, await npmSpecifiers([`${root}/src`, `${root}/ffi`]));
  for (const name of npm.keys()) {
    await copyTree(`${root}/node_modules/${name}`, `${opt}/node_modules/${name}`, () => true);
  }
  const usesNpm = npm.size > 0;
  if (usesNpm) {
    await Deno.writeTextFile(`${opt}/deno.json`, JSON.stringify({ nodeModulesDir: "manual" }) + "\n");
    const deps = Object.fromEntries(npm);
    await Deno.writeTextFile(
      `${opt}/package.json`,
      JSON.stringify({ private: true, dependencies: deps }) + "\n",
    );
  }
  const cli = await daemonCli(root);
  const args = daemonArgs(cli, opts.daemonArgs);
  const script = [
    "#!/bin/sh",
    "# dxenstored as dom0's xenstored (generated by e2e/xen/package.ts)",
    "export DENO_DIR=/var/lib/xenstored/deno-dir HOME=/tmp NO_COLOR=1 DENO_NO_UPDATE_CHECK=1",
    `cd /opt/dxenstored`,
    `exec /opt/dxenstored/deno run --allow-all --quiet --cached-only ${usesNpm ? "" : "--no-config "}` +
    `/opt/dxenstored/src/cli/main.ts ${args.map(shellQuote).join(" ")}`,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${opt}/run`, script);
  await Deno.chmod(`${opt}/run`, 0o755);
  return { daemonCommand: `${args.join(" ")}` };
}

/**
 * The host's strace and the libraries it needs that dom0's image may lack (build.sh adds only the
 * Debian sysroot's libraries, which are Xen's and glibc): both are Debian bookworm, so they match.
 */
async function addStrace(overlay: string): Promise<void> {
  const strace = "/usr/bin/strace";
  const ldd = await run(["ldd", strace]);
  if (!ldd.ok) throw new Error(`--plans P needs strace on the host (apt-get install strace): ${ldd.stderr}`);
  await Deno.mkdir(`${overlay}/usr/bin`, { recursive: true });
  await Deno.copyFile(strace, `${overlay}/usr/bin/strace`);
  for (const m of ldd.stdout.matchAll(/=> (\/\S+)/g)) {
    const lib = m[1];
    if (/\/(libc|libm|libpthread|libdl|ld-linux[^/]*)\.so/.test(lib)) continue; // glibc: dom0 has it
    const dst = `${overlay}${lib}`;
    await Deno.mkdir(dst.slice(0, dst.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(lib, dst); // follows the soname symlink: the library itself, under its soname
  }
}

/** Copies a directory tree (files accepted by keep), iteratively. */
async function copyTree(from: string, to: string, keep: (path: string) => boolean): Promise<void> {
  const todo: [string, string][] = [[from, to]];
  while (todo.length > 0) {
    const [src, dst] = todo.pop()!;
    await Deno.mkdir(dst, { recursive: true });
    for await (const e of Deno.readDir(src)) {
      if (e.isDirectory) todo.push([`${src}/${e.name}`, `${dst}/${e.name}`]);
      else if (e.isFile && keep(`${src}/${e.name}`)) {
        await Deno.copyFile(`${src}/${e.name}`, `${dst}/${e.name}`);
      }
    }
  }
}

/** Names of the npm packages the sources refer to ("npm:name@version" anywhere, also in dynamic imports). */
async function npmSpecifiers(dirs: readonly string[]): Promise<Set<string>> {
  const names = new Set<string>();
  const todo = [...dirs];
  while (todo.length > 0) {
    const d = todo.pop()!;
    const entries = await Array.fromAsync(Deno.readDir(d)).catch(() => []);
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) todo.push(p);
      else if (p.endsWith(".ts")) {
        for (const m of (await Deno.readTextFile(p)).matchAll(/["'`]npm:(@?[\w.-]+(?:\/[\w.-]+)?)/g)) {
          names.add(m[1]);
        }
      }
    }
  }
  return names;
}

/** The packages and their dependencies (from node_modules), name -> installed version. */
async function npmPackages(root: string, names: Set<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const todo = [...names];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (found.has(name)) continue;
    const pkg = JSON.parse(await Deno.readTextFile(`${root}/node_modules/${name}/package.json`));
    found.set(name, pkg.version);
    todo.push(...Object.keys(pkg.dependencies ?? {}));
  }
  return found;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
