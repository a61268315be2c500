/**
 * Builds the dom0 overlay for the real-Xen E2E (copied over dom0's initramfs root by
 * ../shared/xen-qemu/build.sh through EXTRA_DOM0_DIR):
 *
 *   /init                          tests/xen/qemu/dom0/init.sh (the scenarios of one boot)
 *   /e2e/guest-overlay.cpio.gz     the guests' /init (tests/xen/qemu/guest/init.sh) and /usr/bin/xse2e;
 *                                  dom0 appends it to the shared guest initramfs at boot
 *   /opt/dxenstored/               only when dxenstored is under test: the built program
 *                                  (compile/build.ts: dxenstored.js, the daemon with its npm packages and
 *                                  built-in policy plugins), the Deno binary from node_modules, and
 *                                  /opt/dxenstored/run, the launcher (compile/program.ts: exec as
 *                                  `dxenstored` with compile/v8-flags' flags), as the .deb installs them
 *   /usr/bin/strace                only for the performance plans (P, P1): the host's strace (Debian
 *                                  bookworm, as dom0) and the libraries it needs beyond glibc
 */
import { build } from "../../compile/build.ts";
import { launcherScript, PROGRAM_NAME } from "../../compile/program.ts";
import { readV8Flags } from "../../compile/v8_flags.ts";
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
  /** Add strace (plans P and P1 count the daemon's system calls). */
  readonly withStrace?: boolean;
}

export const DENO_BIN = "node_modules/@deno/linux-x64-glibc/deno";
export const DAEMON_RUN = "/opt/dxenstored/run";

/** Asks the built program which flags it has: --xen, --no-fork, --backend... */
export async function daemonCli(root: string, program: string): Promise<DaemonCli> {
  const r = await run([
    `${root}/${DENO_BIN}`,
    "run",
    "--allow-all",
    "--quiet",
    "--no-config",
    program,
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
  // The built program: one file, nothing else of the source tree or node_modules.
  const program = await build(`${overlay}/.program`);
  await Deno.copyFile(program.bundle, `${opt}/dxenstored.js`);
  await Deno.remove(`${overlay}/.program`, { recursive: true });
  const cli = await daemonCli(root, `${opt}/dxenstored.js`);
  const args = daemonArgs(cli, opts.daemonArgs);
  const script = launcherScript({
    deno: "/opt/dxenstored/deno",
    program: "/opt/dxenstored/dxenstored.js",
    v8Flags: readV8Flags(),
    name: PROGRAM_NAME,
    // Deno's cache (the V8 code cache of the program) persists with the store, so a restart is faster.
    env: { DENO_DIR: "/var/lib/xenstored/deno-dir", HOME: "/tmp", NO_COLOR: "1" },
    args,
    shell: "/bin/sh", // busybox ash: its exec takes -a
    comment: "dxenstored as dom0's xenstored (generated by e2e/xen/package.ts)",
  });
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
