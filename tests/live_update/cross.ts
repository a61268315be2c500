// Helpers of the cross-implementation live-update tests (cx → dx, dx → cx): a launcher for this
// checkout's dxenstored that cxenstored can exec, the store as a comparable listing, a
// reply past the watch events.
import assert from "../helpers/assert.ts";
import { type Reply, type WireClient, XS } from "../helpers/wire.ts";
import { tool } from "../migration/cx_capture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * `<dir>/dxenstored`: what an operator would name to `xenstore-control live-update`. It keeps the
 * environment it is given — under the anchors that includes the fake-Xen shim (LD_PRELOAD), which
 * dxenstored does not use but passes on, so that a later switch back to /usr/lib/xen-4.17/bin/xenstored
 * starts it under the shim as anchor.sh did.
 */
export function dxLauncher(dir: string, log: string): string {
  const launcher = `${dir}/dxenstored`;
  Deno.writeTextFileSync(
    launcher,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" ` +
      `--log-file ${log} --log-level debug "$@"\n`,
    { mode: 0o755 },
  );
  return launcher;
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
