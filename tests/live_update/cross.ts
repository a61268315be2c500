// Helpers of the cross-implementation live-update tests (cx → dx, dx → cx): a cxenstored host with a
// launcher for this checkout's dxenstored that cxenstored can exec, the tree every test starts from,
// the store as a comparable listing, a reply past the watch events.
import assert from "../helpers/assert.ts";
import { type Anchor, startAnchor } from "../helpers/anchor.ts";
import { errnoOf, joinNul, type Reply, type WireClient, XS } from "../helpers/wire.ts";
import { tool } from "../migration/cx_capture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * `<dir>/dxenstored`: what an operator would name to `xenstore-control live-update`. It keeps the
 * environment it is given — under the anchors that includes the fake-Xen shim (LD_PRELOAD), which
 * dxenstored does not use but passes on, so that a later switch back to /usr/lib/xen-4.17/bin/xenstored
 * starts it under the shim as anchor.sh did. `log`: the new program's log file (and debug level).
 */
export function dxLauncher(dir: string, log?: string): string {
  const launcher = `${dir}/dxenstored`;
  // Without a log file the new program logs where the old one did (a test daemon's stderr).
  const logArgs = log === undefined ? "" : `--log-file ${log} --log-level debug `;
  Deno.writeTextFileSync(
    launcher,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" ${logArgs}"$@"\n`,
    { mode: 0o755 },
  );
  return launcher;
}

/** A cxenstored host to switch: the anchor, dxenstored's launcher and log, and the daemon's pid. */
export interface CxHost {
  readonly anchor: Anchor;
  readonly launcher: string;
  readonly log: string;
  /** The pid every program of the host runs under: live update execs in place. */
  readonly pid: number;
}

/** Starts cxenstored under the anchors' shim and writes dxenstored's launcher beside it. */
export async function startCxHost(): Promise<CxHost> {
  const anchor = await startAnchor("cxenstored");
  const log = `${anchor.dir}/dx.log`;
  const pid = Number(Deno.readTextFileSync(`${anchor.dir}/pid`).trim());
  return { anchor, launcher: dxLauncher(anchor.dir, log), log, pid };
}

/** A request's reply (watch events on the way kept in `events`). */
export type Requester = (c: WireClient, type: number, payload: string) => Promise<Reply>;

/**
 * The tree the cross tests carry over: a value, a permission list, binary bytes, a relative path, and
 * watches on an absolute and a relative path (tokens tA, tR). `extra` values are written after /a/c.
 */
export async function seedTree(req: Requester, w: WireClient, extra: Record<string, string> = {}) {
  const ok = async (type: number, payload: string) =>
    assert.equal(errnoOf(await req(w, type, payload)), null);
  await ok(XS.WRITE, joinNul("/a/b") + "hello");
  await ok(XS.SET_PERMS, joinNul("/a/b", "n0", "r0"));
  for (
    const [path, value] of [["/a/c", "\x00\x01\xfe\xff"], ...Object.entries(extra), ["rel/x", "relative"]]
  ) {
    await ok(XS.WRITE, joinNul(path) + value);
  }
  for (const [path, token] of [["/a", "tA"], ["rel", "tR"]]) await ok(XS.WATCH, joinNul(path, token));
}

/** The whole store with permissions, one line per node, sorted (cxenstored lists in creation order). */
export async function storeListing(socket: string): Promise<string> {
  const r = await tool(socket, "xenstore-ls", "-f", "-p", "/");
  assert.equal(r.code, 0, r.out);
  return r.out.split("\n").sort().join("\n");
}

/** Skip watch events a client got while we wait for a reply to `reqId` (kept in `events`). */
export async function replyTo(c: WireClient, reqId: number, events: Reply[]): Promise<Reply> {
  for (;;) {
    const r = await c.recv(30000);
    if (r.type === XS.WATCH_EVENT) events.push(r);
    else {
      assert.equal(r.reqId, reqId, `reply ${JSON.stringify(r)}`);
      return r;
    }
  }
}

/** The command line of a process, to tell which program runs under its pid. */
export function programOf(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((x) => x !== "");
}

/** Text of a file, or "" (a log that was never written). */
export function textOf(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}
