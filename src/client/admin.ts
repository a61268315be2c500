// What a daemon can do and how it is doing: feature discovery (GET_FEATURE, GET_QUOTA, CONTROL help),
// quotas (GET_QUOTA/SET_QUOTA, and cxenstored's `CONTROL quota` text), and the daemon's statistics
// (dxenstored's `CONTROL stats`, Prometheus text). Pure parsing of replies plus the requests that get
// them; the store supplies `call`.
import { MsgType } from "../protocol/wire.ts";
import { hasErrno, UnsupportedError, XsError } from "./errors.ts";
import { joinNul, parseU32, splitNul } from "./payload.ts";

/** GET_FEATURE bits (xs_wire.h XENSTORE_SERVER_FEATURE_*; the high bit is dxenstored's). */
export const FEATURE_RECONNECTION = 1;
export const FEATURE_ERROR = 2;
export const FEATURE_WATCH_DEPTH = 4;
export const FEATURE_NESTED_TRANSACTIONS = 0x40000000;

export type DaemonKind = "dxenstored" | "cxenstored" | "oxenstored" | "unknown";

export interface Features {
  /** GET_FEATURE's bits; null if the daemon does not implement GET_FEATURE (Xen 4.17's do not). */
  readonly bits: number | null;
  /** WATCH with a depth (dxenstored). */
  readonly watchDepth: boolean;
  /** Transactions inside transactions (dxenstored). */
  readonly nestedTransactions: boolean;
  /** GET_QUOTA/SET_QUOTA (dxenstored, cxenstored after 4.17); the quota names if so. */
  readonly quota: boolean;
  readonly quotaNames: readonly string[];
  /** CONTROL commands the daemon lists (`help`); null if it lists none or refuses CONTROL. */
  readonly control: readonly string[] | null;
  /** `CONTROL stats`, `policy`, `policy-reload`, `recent` (dxenstored). */
  readonly stats: boolean;
  readonly policy: boolean;
  readonly recent: boolean;
  /** Which daemon this looks like (from what it answers, not from what it claims). */
  readonly daemon: DaemonKind;
}

export type Call = (type: MsgType, payload: string, what: string) => Promise<string>;

/** The answer, or null if the daemon does not implement the request (ENOSYS/EINVAL) or refuses it (EACCES/EPERM). */
async function optional(p: Promise<string>): Promise<string | null> {
  try {
    return await p;
  } catch (e) {
    if (
      hasErrno(e, "ENOSYS") || hasErrno(e, "EINVAL") || hasErrno(e, "EACCES") || hasErrno(e, "EPERM")
    ) return null;
    throw e;
  }
}

/** Ask everything at once (one round trip: the requests are pipelined). */
export async function probeFeatures(call: Call): Promise<Features> {
  const [feat, quota, help] = await Promise.all([
    optional(call(MsgType.GET_FEATURE, "", "GET_FEATURE")),
    optional(call(MsgType.GET_QUOTA, "", "GET_QUOTA")),
    optional(call(MsgType.CONTROL, joinNul(["help"]), "CONTROL help")),
  ]);
  const bits = feat === null ? null : parseU32(feat, "feature bits");
  const control = help === null ? null : parseHelp(help);
  const has = (c: string) => control?.includes(c) ?? false;
  const daemon: DaemonKind = has("stats") && has("policy")
    ? "dxenstored"
    : has("live-update")
    ? "cxenstored"
    : help !== null && help.replace(/\0$/, "") === "OK"
    ? "oxenstored" // its CONTROL (XS_DEBUG) answers OK to anything it does not know
    : "unknown";
  const quotaNames = quota === null ? [] : quota.replace(/\0$/, "").split(" ").filter((s) => s !== "");
  return {
    bits,
    watchDepth: bits !== null && (bits & FEATURE_WATCH_DEPTH) !== 0,
    nestedTransactions: bits !== null && (bits & FEATURE_NESTED_TRANSACTIONS) !== 0,
    quota: quota !== null,
    quotaNames,
    control,
    stats: has("stats"),
    policy: has("policy"),
    recent: has("recent"),
    daemon,
  };
}

/** `help`'s reply: one "name\tparameters" line per command (continuation lines start with spaces). */
function parseHelp(text: string): string[] | null {
  const lines = text.replace(/\0$/, "").split("\n").filter((l) => l !== "" && !l.startsWith(" "));
  if (lines.length === 0 || !lines.some((l) => l.includes("\t"))) return null;
  return lines.map((l) => l.split("\t")[0]);
}

// --- quotas ------------------------------------------------------------------------------------------

/** A domain's use of the daemon, as `CONTROL quota <domid>` reports it. */
export interface DomainUsage {
  readonly nodes: number;
  readonly watches: number;
  readonly transactions: number;
  readonly outstanding: number;
  readonly memory: number;
}

/** `name : value ...` lines under a heading (cxenstored's quota listings). */
function parseColumns(text: string, heading: RegExp): Record<string, number> | null {
  const lines = text.replace(/\0$/, "").split("\n");
  if (!heading.test(lines[0] ?? "")) return null;
  const out: Record<string, number> = {};
  for (const l of lines.slice(1)) {
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(-?[0-9]+)/.exec(l);
    if (m !== null) out[m[1]] = Number(m[2]);
  }
  return out;
}

export class QuotaApi {
  constructor(private readonly call: Call) {}

  /** The quota names the daemon has (GET_QUOTA). */
  async names(): Promise<string[]> {
    const r = await this.quotaCall(MsgType.GET_QUOTA, "", "GET_QUOTA");
    return r.replace(/\0$/, "").split(" ").filter((s) => s !== "");
  }

  /** The value of quota `name`: global, or in force for `domid` (GET_QUOTA). 0 means "no quota". */
  async get(name: string, domid?: number): Promise<number> {
    const args = domid === undefined ? [name] : [String(domid), name];
    return parseU32(
      await this.quotaCall(MsgType.GET_QUOTA, joinNul(args), `GET_QUOTA ${args.join(" ")}`),
      name,
    );
  }

  /** Set quota `name` globally, or for `domid` only (SET_QUOTA). */
  async set(name: string, value: number, domid?: number): Promise<void> {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`bad quota value ${value}`);
    }
    const args = domid === undefined ? [name, String(value)] : [String(domid), name, String(value)];
    await this.quotaCall(MsgType.SET_QUOTA, joinNul(args), `SET_QUOTA ${args.join(" ")}`);
  }

  /** The global limits as `CONTROL quota` lists them (cxenstored 4.17 and dxenstored). */
  async limits(): Promise<Record<string, number>> {
    const r = await this.control(["quota"]);
    const q = parseColumns(r, /^Quota settings:/);
    if (q === null) throw new UnsupportedError("CONTROL quota", "this xenstored does not list its quotas");
    return q;
  }

  /** A domain's usage (`CONTROL quota <domid>`; ENOENT for a domain the daemon does not know). */
  async usage(domid: number): Promise<DomainUsage> {
    const r = await this.control(["quota", String(domid)]);
    const u = parseColumns(r, /^Domain [0-9]+:/);
    if (u === null) {
      // oxenstored: "dom0 quota: 5/1000" — nodes only.
      const m = /^dom([0-9]+) quota: ([0-9]+)\/([0-9]+)/.exec(r);
      if (m === null) {
        throw new UnsupportedError("CONTROL quota <domid>", "this xenstored does not report usage");
      }
      return { nodes: Number(m[2]), watches: NaN, transactions: NaN, outstanding: NaN, memory: NaN };
    }
    const n = (k: string) => u[k] ?? NaN;
    return {
      nodes: n("nodes"),
      watches: n("watches"),
      transactions: n("transactions"),
      outstanding: n("outstanding"),
      memory: n("memory"),
    };
  }

  private async quotaCall(type: MsgType, payload: string, what: string): Promise<string> {
    try {
      return await this.call(type, payload, what);
    } catch (e) {
      if (hasErrno(e, "ENOSYS")) throw new UnsupportedError("GET_QUOTA/SET_QUOTA");
      throw e;
    }
  }

  private async control(args: string[]): Promise<string> {
    return await controlCall(this.call, args);
  }
}

/** CONTROL with `args`; the reply text without its NUL. ENOSYS becomes UnsupportedError. */
export async function controlCall(call: Call, args: readonly string[]): Promise<string> {
  try {
    return (await call(MsgType.CONTROL, joinNul(args), `CONTROL ${args.join(" ")}`)).replace(/\0$/, "");
  } catch (e) {
    if (hasErrno(e, "ENOSYS")) throw new UnsupportedError("CONTROL");
    throw e;
  }
}

// --- statistics --------------------------------------------------------------------------------------

/** One Prometheus sample. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Prometheus text lines → samples (comments and malformed lines are skipped). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    if (m[3] !== undefined) {
      for (const l of m[3].matchAll(LABEL)) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      }
    }
    const v = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** Replies to `stats` at most (each ≤ 4 KiB): bounds a listing that keeps growing while it is read. */
const MAX_STATS_PAGES = 4096;

/**
 * All samples whose name starts with `prefix` (dxenstored's `CONTROL stats`). A reply holds 4 KiB; a
 * longer listing is read in pages (`stats <prefix> <skip>`), which dxenstored answers since the
 * client library exists; an older one answers EINVAL and the first page is what there is.
 */
export async function readStats(call: Call, prefix = ""): Promise<{ samples: Sample[]; complete: boolean }> {
  const samples: Sample[] = [];
  let skip = 0;
  for (let page = 0; page < MAX_STATS_PAGES; page++) {
    let text: string;
    try {
      text = await controlCall(call, skip === 0 ? ["stats", prefix] : ["stats", prefix, String(skip)]);
    } catch (e) {
      if (skip > 0 && hasErrno(e, "EINVAL")) return { samples, complete: false };
      if (skip === 0 && hasErrno(e, "EINVAL")) throw new UnsupportedError("CONTROL stats");
      throw e;
    }
    const got = parseSamples(text);
    samples.push(...got);
    const more = /# truncated: ([0-9]+) more lines/.exec(text);
    if (more === null || Number(more[1]) === 0 || got.length === 0) return { samples, complete: true };
    skip += got.length;
  }
  throw new XsError("E2BIG", `stats ${prefix}: more than ${MAX_STATS_PAGES} pages`);
}

/** `splitNul` for callers of this module. */
export { splitNul };
