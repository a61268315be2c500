/**
 * Builds the dom0 overlay for the real-Xen E2E (copied over dom0's initramfs root by
 * ../shared/xen-qemu/build.sh through EXTRA_DOM0_DIR):
 *
 *   /init                          tests/xen/qemu/dom0/init.sh (the scenarios of one boot)
 *   /e2e/live_update.sh            tests/xen/qemu/dom0/live_update.sh (plan L, sourced by /init)
 *   /e2e/diagnostics.sh            tests/xen/qemu/dom0/diagnostics.sh (plan B's snapshots, quiet wait)
 *   /e2e/bin/tlb_probe             tests/xen/qemu/dom0/tlb_probe.c: a system call's cost against the
 *                                  pages touched between calls (plan B, before its guest)
 *   /e2e/guest-overlay.cpio.gz     the guests' /init (tests/xen/qemu/guest/init.sh) and /usr/bin/xse2e;
 *                                  dom0 appends it to the shared guest initramfs at boot
 *   the .deb's files               only when dxenstored is under test: the package `deno task deb`
 *                                  builds (packaging/build_deb.ts), unpacked as dpkg installs it:
 *                                  /usr/sbin/dxenstored, /usr/lib/dxenstored/, /etc/xen/dxenstored.conf
 *                                  (its conffile: the persistent store under /var/lib/xenstored), ...
 *                                  plus what Debian's dom0 has and this busybox dom0 lacks: /bin/bash
 *                                  (the launcher's interpreter) and /usr/bin/choom (the init script runs
 *                                  xenstored through it), copied from this host
 *   /etc/default/xen               only with --daemon-arg: XENSTORED_ARGS, as an operator sets it
 *   /usr/bin/strace                only for the performance plans (P, P1): the host's strace (Debian
 *                                  bookworm, as dom0) and the libraries it needs beyond glibc
 *
 * dom0's init.sh starts the packaged daemon as Debian's /etc/init.d/xen does (start-stop-daemon,
 * choom, `--pid-file /run/xenstore.pid` and nothing else, XENSTORED_ROOTDIR=/run/xenstored), so the
 * defaults the package carries (--xen real on a Xen host, its configuration file) are what is tested.
 */
import { buildDeb } from "../../packaging/build_deb.ts";
import { run } from "./proc.ts";

export interface PackageOptions {
  readonly root: string;
  readonly overlay: string;
  /** Package dxenstored (false: the image is only for the reference daemons). */
  readonly withDaemon: boolean;
  /** Extra daemon arguments (--daemon-arg): XENSTORED_ARGS of dom0's /etc/default/xen. */
  readonly daemonArgs: readonly string[];
  /** Add strace (plans P and P1 count the daemon's system calls). */
  readonly withStrace?: boolean;
}

/** The installed daemon, as /etc/default/xen's XENSTORED names it. */
export const DAEMON_PATH = "/usr/sbin/dxenstored";
/** Host programs Debian's dom0 has and the busybox dom0 lacks (their libraries come from the sysroot). */
const HOST_PROGRAMS = ["/bin/bash", "/usr/bin/choom"];

/** /etc/default/xen with XENSTORED_ARGS, or null when there are none (the file is then not shipped). */
export function defaultXen(args: readonly string[]): string | null {
  if (args.length === 0) return null;
  if (args.some((a) => /["\\$`]/.test(a))) throw new Error(`--daemon-arg: no quotes or $ please: ${args}`);
  return `# written by e2e/xen/package.ts (--daemon-arg)\nXENSTORED_ARGS="${args.join(" ")}"\n`;
}

export async function buildOverlay(opts: PackageOptions): Promise<{ daemonCommand?: string }> {
  const { root, overlay } = opts;
  await Deno.remove(overlay, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${overlay}/e2e`, { recursive: true });
  await Deno.copyFile(`${root}/tests/xen/qemu/dom0/init.sh`, `${overlay}/init`);
  await Deno.chmod(`${overlay}/init`, 0o755);
  // plan L's scenario (sourced by /init)
  await Deno.copyFile(`${root}/tests/xen/qemu/dom0/live_update.sh`, `${overlay}/e2e/live_update.sh`);
  // plan B's thread and interrupt snapshots (sourced by /init)
  await Deno.copyFile(`${root}/tests/xen/qemu/dom0/diagnostics.sh`, `${overlay}/e2e/diagnostics.sh`);

  // the guests' overlay: /init and the static raw-protocol client
  const g = `${overlay}/.guest`;
  await Deno.mkdir(`${g}/usr/bin`, { recursive: true });
  await Deno.copyFile(`${root}/tests/xen/qemu/guest/init.sh`, `${g}/init`);
  await Deno.chmod(`${g}/init`, 0o755);
  await compileStatic(`${root}/tests/xen/qemu/guest/xse2e.c`, `${g}/usr/bin/xse2e`);
  // dom0's system-call cost probe (plan B runs it before its guest; docs/domains.md, "Third pass")
  await Deno.mkdir(`${overlay}/e2e/bin`, { recursive: true });
  await compileStatic(`${root}/tests/xen/qemu/dom0/tlb_probe.c`, `${overlay}/e2e/bin/tlb_probe`);
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
  // The package itself, unpacked as dpkg does (its files, modes and conffiles; no maintainer script
  // of it starts anything).
  const debDir = `${overlay}/.deb`;
  const deb = await buildDeb({ out: debDir, compression: "none", test: false });
  const x = await run(["dpkg-deb", "-x", deb, overlay]);
  if (!x.ok) throw new Error(`dpkg-deb -x ${deb} failed:\n${x.stderr}`);
  await Deno.remove(debDir, { recursive: true });
  for (const p of HOST_PROGRAMS) {
    await Deno.mkdir(`${overlay}${p.slice(0, p.lastIndexOf("/"))}`, { recursive: true });
    await Deno.copyFile(p, `${overlay}${p}`);
    await Deno.chmod(`${overlay}${p}`, 0o755);
  }
  const defaults = defaultXen(opts.daemonArgs);
  if (defaults !== null) {
    await Deno.mkdir(`${overlay}/etc/default`, { recursive: true });
    await Deno.writeTextFile(`${overlay}/etc/default/xen`, defaults);
  }
  return {
    daemonCommand: `${DAEMON_PATH} --pid-file /run/xenstore.pid${
      opts.daemonArgs.length > 0 ? ` ${opts.daemonArgs.join(" ")}` : ""
    } (as /etc/init.d/xen starts it; /etc/xen/dxenstored.conf from the package)`,
  };
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

/** A static binary of one C file for the images (no libc of the build host needed in them). */
async function compileStatic(source: string, output: string): Promise<void> {
  const cc = await run(["gcc", "-O2", "-Wall", "-static", "-o", output, source]);
  if (!cc.ok) throw new Error(`compiling ${source.split("/").pop()} failed:\n${cc.stderr}`);
}
