// The built-in defaults that depend on the host. One rule for every setting: the command line wins,
// then the configuration file, then the built-in default (--help says so). Only --xen's built-in
// default depends on the host: a host with Xen's devices (/dev/xen or /proc/xen) is a dom0, and a
// dom0 xenstored serves guests, so there it is `real`; elsewhere (a development machine, CI) it is
// `none`, sockets only. Sockets only on a Xen host is an explicit choice (--xen none, or `xen = none`).
import type { XenSpec } from "../xen/open.ts";
import type { DaemonOptions } from "./options.ts";

/** What the default looks at: whether a path exists. Tests inject their own. */
export interface HostProbe {
  exists(path: string): boolean;
}

/** The paths that mark a Xen host: the privcmd/evtchn devices and xenfs' mount point. */
export const XEN_HOST_PATHS = ["/dev/xen", "/proc/xen"] as const;

export const HOST: HostProbe = {
  exists(path: string): boolean {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  },
};

/** --xen's built-in default on this host, and why (a line for the start-up log). */
export function defaultXen(probe: HostProbe): { spec: XenSpec; why: string } {
  const found = XEN_HOST_PATHS.find((p) => probe.exists(p));
  if (found !== undefined) {
    return { spec: { kind: "real" }, why: `--xen real (the default on a Xen host: ${found} exists)` };
  }
  return {
    spec: { kind: "none" },
    why: `--xen none (the default without ${XEN_HOST_PATHS.join(" or ")}: sockets only)`,
  };
}

/**
 * Fill in the built-in defaults the command line and the configuration file left unset. Returns the
 * lines worth logging at start (which default was taken, and why).
 */
export function applyHostDefaults(o: DaemonOptions, probe: HostProbe): string[] {
  const notes: string[] = [];
  if (o.xen === undefined) {
    const d = defaultXen(probe);
    o.xen = d.spec;
    notes.push(d.why);
  }
  return notes;
}
