// The pid file: written by the daemon itself with its own pid, and locked (flock) for as long as it
// runs. The lock is what makes a second start harmless: Debian's init script only checks
// /proc/<pid>/exe for oxenstored/cxenstored, so a dxenstored chosen through $XENSTORED would be
// started again by a second `/etc/init.d/xen start`; that second instance finds the lock held and
// exits 0 without touching the live socket. The kernel drops the lock when the daemon dies, so a
// stale file never blocks a restart.
import * as sys from "./sys.ts";

export type PidFileResult =
  | { readonly kind: "locked"; readonly pidFile: PidFile }
  | { readonly kind: "busy"; readonly pid: number | null }
  | { readonly kind: "error"; readonly message: string };

export class PidFile {
  private constructor(readonly path: string, private fd: number) {}

  /** Lock `path` (creating it and its folder) and write `pid` into it. */
  static acquire(path: string, pid = Deno.pid): PidFileResult {
    const slash = path.lastIndexOf("/");
    if (slash > 0) {
      try {
        Deno.mkdirSync(path.slice(0, slash), { recursive: true, mode: 0o755 });
      } catch { /* reported by the open below */ }
    }
    const r = sys.openLocked(path);
    if ("busy" in r) return { kind: "busy", pid: readPid(path) };
    if ("error" in r) return { kind: "error", message: r.error };
    if (!sys.rewrite(r.fd, `${pid}\n`)) {
      sys.closeFd(r.fd);
      return { kind: "error", message: `cannot write ${path}` };
    }
    return { kind: "locked", pidFile: new PidFile(path, r.fd) };
  }

  /** Remove the file and drop the lock (clean shutdown). */
  release(): void {
    if (this.fd < 0) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone */ }
    sys.closeFd(this.fd);
    this.fd = -1;
  }
}

/** The pid recorded in a pid file, or null. */
export function readPid(path: string): number | null {
  try {
    const t = Deno.readTextFileSync(path).trim();
    return /^[0-9]+$/.test(t) ? Number(t) : null;
  } catch {
    return null;
  }
}
