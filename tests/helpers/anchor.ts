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

/** Start a reference daemon on a fresh socket; returns once it accepts connections. */
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
  // The socket exists once the daemon has bound it, which is before it listens: until then a connect
  // is refused (seen under load). Wait until one is accepted.
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ transport: "unix", path: `${dir}/socket` })).close();
      break;
    } catch (e) {
      const early = e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.WouldBlock;
      if (!early || i >= 500) {
        await run(script, ["stop", dir]).catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        throw new Error(`${kind} does not accept connections on ${dir}/socket: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
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
