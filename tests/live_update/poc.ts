/**
 * Runs the live-update proof of concept (poc_server.ts) and cxenstored 4.17 as live-update targets of
 * each other, on one socket in a fresh folder. Both read XENSTORED_RUNDIR and XENSTORED_PATH, as
 * cxenstored does; the programs `xenstore-control live-update` names are two small wrapper scripts.
 */
import { ANCHORS_BUILD } from "../helpers/anchor.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
export const XENSTORED = "/usr/lib/xen-4.17/bin/xenstored";
export const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";
const dec = new TextDecoder();

export interface Host {
  readonly dir: string;
  readonly socket: string;
  /** The program to name in `live-update` to get the proof of concept. */
  readonly pocTarget: string;
  /** The program to name to get cxenstored 4.17 (under the anchors' shim). */
  readonly cxTarget: string;
  readonly pid: number;
  /** The process's current command line. */
  cmdline(): string;
  alive(): boolean;
  log(): string;
  stop(): Promise<void>;
}

export function cxAvailable(): boolean {
  try {
    return Deno.statSync(XENSTORED).isFile && Deno.statSync(`${ANCHORS_BUILD}/xsshim.so`).isFile;
  } catch {
    return false;
  }
}

/** Start with the proof of concept ("poc") or cxenstored ("cx"), with `env` added (the PoC's knobs). */
export async function startHost(first: "poc" | "cx", env: Record<string, string> = {}): Promise<Host> {
  const dir = await Deno.makeTempDir({ prefix: "lu-poc-" });
  const socket = `${dir}/socket`;
  const pocTarget = `${dir}/poc.sh`;
  const cxTarget = `${dir}/cx.sh`;
  Deno.writeTextFileSync(
    pocTarget,
    `#!/bin/sh\nexec ${Deno.execPath()} run --allow-all --quiet ${ROOT}tests/live_update/poc_server.ts "$@"\n`,
  );
  Deno.writeTextFileSync(
    cxTarget,
    `#!/bin/sh\nexec env LD_PRELOAD=${ANCHORS_BUILD}/xsshim.so XS_SHIM_SOCKET="$XENSTORED_PATH" ${XENSTORED} "$@"\n`,
  );
  Deno.chmodSync(pocTarget, 0o755);
  Deno.chmodSync(cxTarget, 0o755);
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", `exec "$0" -N >"$1" 2>&1`, first === "poc" ? pocTarget : cxTarget, `${dir}/log`],
    env: { ...env, XENSTORED_RUNDIR: dir, XENSTORED_PATH: socket },
    stdin: "null",
  }).spawn();
  const status = child.status;
  let exited = false;
  status.then(() => exited = true);
  for (let i = 0; i < 600 && !exited; i++) {
    try {
      Deno.statSync(socket);
      break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  const host: Host = {
    dir,
    socket,
    pocTarget,
    cxTarget,
    pid: child.pid,
    cmdline: () => {
      try {
        return Deno.readTextFileSync(`/proc/${child.pid}/cmdline`).replaceAll("\0", " ").trim();
      } catch {
        return "";
      }
    },
    alive: () => !exited,
    log: () => {
      try {
        return Deno.readTextFileSync(`${dir}/log`);
      } catch {
        return "";
      }
    },
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      await status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  if (exited) {
    const log = host.log();
    await host.stop();
    throw new Error(`${first} did not start:\n${log}`);
  }
  return host;
}

/**
 * A live-update target that keeps a copy of the state it is handed (as `<dir>/handed.state`) and then
 * execs `then` (one of the host's targets) with the same arguments.
 */
export function copyingTarget(h: Host, then: string): string {
  const script = `${h.dir}/copy-then.sh`;
  Deno.writeTextFileSync(
    script,
    `#!/bin/sh\ncp "$XENSTORED_RUNDIR/state_dump" ${h.dir}/handed.state\nexec ${then} "$@"\n`,
  );
  Deno.chmodSync(script, 0o755);
  return script;
}

/** Run a xenstore tool against the host. */
export async function tool(h: Host, cmd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, {
    args,
    env: { XENSTORED_PATH: h.socket },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** `xenstore-control live-update [args] <target>`; resolves when the tool has its answer. */
export async function liveUpdate(
  h: Host,
  target: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  return await tool(h, XENSTORE_CONTROL, "live-update", ...args, target);
}
