/**
 * Reference daemons (Debian's cxenstored, oxenstored) as oracles, through /work/shared/anchors
 * (scripts/anchor.sh; the fake-Xen shim is built into ANCHORS_BUILD, default <repo>/.build/anchors).
 *
 *   if (anchorsAvailable()) { const ref = await startAnchor("cxenstored"); try {...} finally { await ref.stop(); } }
 */

const ROOT = new URL("../../", import.meta.url).pathname;
export const ANCHORS_DIR = Deno.env.get("ANCHORS_DIR") ?? "/work/shared/anchors";
export const ANCHORS_BUILD = Deno.env.get("ANCHORS_BUILD") ?? `${ROOT}.build/anchors`;
const dec = new TextDecoder();

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** The anchors folder and a Xen xenstored are present (the shim can then be built if missing). */
export function anchorsAvailable(): boolean {
  return isFile(`${ANCHORS_DIR}/scripts/anchor.sh`) && isFile("/usr/lib/xen-4.17/bin/xenstored");
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, {
    args,
    env: { ANCHORS_BUILD },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

async function ensureShim(): Promise<void> {
  if (isFile(`${ANCHORS_BUILD}/xsshim.so`)) return;
  const r = await run("make", ["-C", ANCHORS_DIR]);
  if (r.code !== 0 || !isFile(`${ANCHORS_BUILD}/xsshim.so`)) {
    throw new Error(`building the anchors shim failed (ANCHORS_BUILD=${ANCHORS_BUILD}):\n${r.out}`);
  }
}

export interface Anchor {
  readonly kind: string;
  readonly dir: string;
  readonly socket: string;
  stop(): Promise<void>;
}

/** Is a Unix socket bound at `path` listening? (/proc/net/unix: flag __SO_ACCEPTCON; true without it.) */
function listening(path: string): boolean {
  let table: string;
  try {
    table = Deno.readTextFileSync("/proc/net/unix");
  } catch {
    return true; // cannot tell: take the socket's existence for it, as before
  }
  for (const line of table.split("\n")) {
    if (!line.endsWith(` ${path}`)) continue;
    const flags = parseInt(line.trim().split(/\s+/)[3], 16);
    if ((flags & 0x10000) !== 0) return true;
  }
  return false;
}

/** Start a reference daemon on a fresh socket; returns once it listens. */
export async function startAnchor(kind: "cxenstored" | "oxenstored"): Promise<Anchor> {
  await ensureShim();
  const dir = await Deno.makeTempDir({ prefix: `anchor-${kind}-` });
  const script = `${ANCHORS_DIR}/scripts/anchor.sh`;
  const r = await run(script, ["start", kind, dir]);
  if (r.code !== 0) {
    await run(script, ["stop", dir]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`anchor.sh start ${kind} failed:\n${r.out}`);
  }
  // The socket exists once the daemon has bound it, which is before it listens: a connect in between
  // is refused (seen under load). Wait until the kernel lists it as listening — without connecting,
  // which would change the daemon's state (its next connection's descriptor number, for one).
  const socket = `${dir}/socket`;
  for (let i = 0; !listening(socket); i++) {
    if (i >= 500) {
      await run(script, ["stop", dir]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`${kind} does not listen on ${socket}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  let stopped = false;
  return {
    kind,
    dir,
    socket: `${dir}/socket`,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await run(script, ["stop", dir]);
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  };
}
