// systemd's readiness protocol without libsystemd (as upstream Xen's xen-sd-notify.h): one datagram
// "READY=1\nSTATUS=..." to $NOTIFY_SOCKET, sent by the daemon process itself. Under upstream's
// xenstored.service (Type=notify, NotifyAccess=all, ExecStart=launch-xenstore) the daemon is a
// forked child of the started process, which is why the unit allows any pid to notify.
import { sendDatagram } from "./sys.ts";

const enc = new TextEncoder();

/** $NOTIFY_SOCKET after sdNotify(..., true) removed it from the environment. */
let notifyPath: string | undefined;

/**
 * Send `state` (newline-separated assignments) to $NOTIFY_SOCKET. Returns false if the variable is
 * unset or sending failed. With `unset`, the variable is removed (as sd_notify(1, ...)) so that
 * processes started later do not notify on our behalf.
 */
export function sdNotify(state: string, unset = false): boolean {
  const path = Deno.env.get("NOTIFY_SOCKET") ?? notifyPath;
  if (path === undefined || path === "") return false;
  if (unset) {
    // Kept for this process's own later notices (STOPPING=1), not for its children.
    notifyPath = path;
    Deno.env.delete("NOTIFY_SOCKET");
  }
  return sendDatagram(path, enc.encode(state));
}

/** $NOTIFY_SOCKET, also after sdNotify(..., true) removed it (a live update passes it on). */
export function notifySocket(): string | undefined {
  return Deno.env.get("NOTIFY_SOCKET") ?? notifyPath;
}
