// The runner: every requirement of docs/spec/ in order, one check each, against one daemon. Checks run one
// at a time, each in its own subtree and with its own connections, so one check's failure (or a daemon
// that hangs up on it) does not decide another's verdict.
import { type Requirement, REQUIREMENTS } from "./requirements.ts";
import { type Check, Ctx, Fail, NotApplicable } from "./lib/check.ts";
import { Conn, Timeout, Violations, XS } from "./lib/wire.ts";
import { GuestEnv } from "./lib/sim.ts";
import { CHECKS, LAST } from "./checks/index.ts";

export type Verdict = "pass" | "fail" | "n/a";

export interface Result {
  readonly req: Requirement;
  readonly verdict: Verdict;
  readonly detail: string;
  readonly ms: number;
}

export interface Target {
  /** The daemon's Unix socket (connections there act for the privileged domain). */
  readonly socket: string;
  /** The simulated Xen's directory when the daemon runs with `--xen=sim:<dir>`: guest checks run then. */
  readonly simDir?: string;
}

export interface RunOptions {
  /** Only these requirement ids (default: all). */
  readonly only?: ReadonlySet<string>;
  /** Called with each result as soon as it is known. */
  readonly onResult?: (r: Result) => void;
  /** Per-check time limit (default 20 s). */
  readonly timeoutMs?: number;
}

const CHECK_BY_ID = new Map<string, Check>(CHECKS.map((c) => [c.id, c]));

/** The checks and the requirements, in step: a daemon requirement without a check is a suite bug. */
export function missingChecks(): string[] {
  return REQUIREMENTS.filter((r) => r.scope !== "client" && !CHECK_BY_ID.has(r.id)).map((r) => r.id);
}

async function socketFeatures(socket: string, v: Violations): Promise<number | null> {
  const c = await Conn.open(socket, v);
  try {
    // An empty payload, as libxenstore sends it; a daemon that never answers it (FRAME-2) offers nothing.
    const r = await c.reply(await c.send(XS.GET_FEATURE, ""), 3000);
    return r.type === XS.GET_FEATURE ? Number(r.payload.replace(/\0$/, "")) : null;
  } catch (e) {
    if (e instanceof Timeout) return null;
    throw e;
  } finally {
    c.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function runSuite(target: Target, opts: RunOptions = {}): Promise<Result[]> {
  const missing = missingChecks().filter((id) => opts.only === undefined || opts.only.has(id));
  if (missing.length > 0) throw new Error(`requirements without a check: ${missing.join(" ")}`);
  const violations = new Violations();
  const features = await socketFeatures(target.socket, violations);
  const guests = target.simDir ? new GuestEnv(target.simDir, target.socket, violations) : null;
  const run = `/conformance/r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const results: Result[] = [];
  const ordered = [
    ...REQUIREMENTS.filter((r) => !LAST.has(r.id)),
    ...REQUIREMENTS.filter((r) => LAST.has(r.id)),
  ].filter((r) => opts.only === undefined || opts.only.has(r.id));
  for (const req of ordered) {
    const t0 = Date.now();
    let verdict: Verdict = "pass";
    let detail = "";
    if (req.scope === "client") {
      verdict = "n/a";
      detail = "a requirement on clients";
    } else {
      violations.current = req.id;
      const ctx = new Ctx(target.socket, violations, guests, `${run}/${req.id.toLowerCase()}`, features);
      try {
        await withTimeout(CHECK_BY_ID.get(req.id)!.run(ctx), opts.timeoutMs ?? 20_000, req.id);
        if ((req.scope === "both") && guests === null) detail = "socket part only (no guest domains)";
      } catch (e) {
        if (e instanceof NotApplicable) {
          verdict = "n/a";
        } else {
          verdict = "fail";
        }
        detail = e instanceof Fail || e instanceof NotApplicable
          ? e.message
          : `${(e as Error).name}: ${(e as Error).message}`;
      } finally {
        await withTimeout(ctx.close(), 10_000, `${req.id} cleanup`).catch(() => {});
      }
    }
    const r: Result = { req, verdict, detail, ms: Date.now() - t0 };
    results.push(r);
  }
  // Rules every packet must keep, screened during the whole run: a check that passed on its own fails if
  // another check made the daemon break it.
  const final = results.map((r) => {
    const seen = violations.seen.get(r.req.id);
    if (seen === undefined || r.verdict === "fail") return r;
    return { ...r, verdict: "fail" as const, detail: seen.join("; ") };
  });
  await cleanupRun(target.socket, run, violations);
  // Reported in the spec's order, whatever order they ran in.
  const order = new Map(REQUIREMENTS.map((r, i) => [r.id, i]));
  final.sort((a, b) => order.get(a.req.id)! - order.get(b.req.id)!);
  for (const r of final) opts.onResult?.(r);
  return final;
}

async function cleanupRun(socket: string, run: string, v: Violations): Promise<void> {
  try {
    const c = await Conn.open(socket, v);
    try {
      await c.request(XS.RM, `${run}\0`);
    } finally {
      c.close();
    }
  } catch { /* a daemon that died during the run has failed checks already */ }
}

export interface Summary {
  readonly pass: number;
  readonly fail: number;
  readonly failShould: number;
  readonly na: number;
}

export function summarize(results: readonly Result[]): Summary {
  let pass = 0, fail = 0, failShould = 0, na = 0;
  for (const r of results) {
    if (r.verdict === "pass") pass++;
    else if (r.verdict === "n/a") na++;
    else if (r.req.level === "SHOULD") failShould++;
    else fail++;
  }
  return { pass, fail, failShould, na };
}

/** One line per requirement: `FRAME-4   pass  MUST    len above 4096 closes ...  [detail]`. */
export function formatResult(r: Result): string {
  const head = `${r.req.id.padEnd(9)} ${r.verdict.padEnd(4)}  ${r.req.level.padEnd(6)} ${r.req.title}`;
  return r.detail === "" ? head : `${head} — ${r.detail}`;
}

export function formatSummary(results: readonly Result[]): string {
  const s = summarize(results);
  return `${results.length} requirements: ${s.pass} pass, ${s.fail} fail (MUST), ${s.failShould} fail (SHOULD), ` +
    `${s.na} not applicable`;
}
