/**
 * The daemons the client library is tested against: dxenstored (tests/helpers/daemon.ts) and, when the
 * anchors are there, Debian's cxenstored and oxenstored 4.17 (tests/helpers/anchor.ts).
 *
 *   for (const t of TARGETS) Deno.test({ name: `... (${t.kind})`, ignore: !t.available, fn: () => t.with(async (socket) => {...}) });
 */
import { startDaemon } from "../helpers/daemon.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";

export type Kind = "dxenstored" | "cxenstored" | "oxenstored";

export interface Target {
  readonly kind: Kind;
  readonly available: boolean;
  /** Run `fn` with a fresh daemon's socket; the daemon is stopped afterwards. */
  with<T>(fn: (socket: string) => Promise<T>): Promise<T>;
}

const anchors = anchorsAvailable();

export const TARGETS: readonly Target[] = [
  {
    kind: "dxenstored",
    available: true,
    async with(fn) {
      const d = await startDaemon();
      try {
        return await fn(d.socket);
      } catch (e) {
        if (e instanceof Error) e.message += `\n--- daemon stderr ---\n${d.stderr}`;
        throw e;
      } finally {
        await d.stop();
      }
    },
  },
  ...(["cxenstored", "oxenstored"] as const).map((kind): Target => ({
    kind,
    available: anchors,
    async with(fn) {
      const a = await startAnchor(kind);
      try {
        await accepting(a.socket);
        return await fn(a.socket);
      } finally {
        await a.stop();
      }
    },
  })),
];

/** anchor.sh returns once the socket file exists; wait until it also accepts connections. */
async function accepting(socket: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
