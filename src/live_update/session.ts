// CONTROL `live-update`: the session of cxenstored 4.17 (xenstored_control.c), its argument rules and
// reply texts, so that `xenstore-control live-update [-c cmdline] [-F] [-t secs] <file>` and
// operators' scripts work unchanged (docs/live-update.md has the verified table). This module only
// decides: it owns the session's state and answers each request; ./controller.ts does the waiting and
// the switch itself. Replies are text without the trailing NUL.
//
//   -f <file>            start a session owned by the asking connection; check the file
//   -c <cmdline>         the new program's arguments instead of ours (owner only)
//   -s [-F] [-t <secs>]  switch once no transaction is open (a delayed request: no reply now)
//   -a                   end the session
import { XsError } from "../common/xs_error.ts";

/** cxenstored's timeout when `-s` names none (xenstore-control always sends `-t`, 60 by default). */
export const DEFAULT_TIMEOUT_S = 60;

export type LiveUpdateRequest =
  | { readonly kind: "file"; readonly file: string }
  | { readonly kind: "cmdline"; readonly cmdline: string }
  | { readonly kind: "start"; readonly force: boolean; readonly timeoutS: number }
  | { readonly kind: "abort" };

function einval(why: string): never {
  throw new XsError("EINVAL", why);
}

/** C's atoi() as cxenstored applies it to `-t` ("x" is 0, "12ab" is 12). */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s)!;
  const digits = m[2].replace(/^0+/, "").slice(0, 9);
  const n = digits === "" ? 0 : Number(digits);
  return m[1] === "-" ? -n : n;
}

/** The arguments after `live-update`, with cxenstored's rules: anything else is EINVAL. */
export function parseLiveUpdateArgs(a: readonly string[]): LiveUpdateRequest {
  if (a.length < 1) einval("live-update needs arguments");
  switch (a[0]) {
    case "-a":
      if (a.length !== 1) einval("live-update -a takes no argument");
      return { kind: "abort" };
    case "-c":
      if (a.length !== 2) einval("live-update -c takes one command line");
      return { kind: "cmdline", cmdline: a[1] };
    case "-s": {
      let force = false;
      let timeoutS = DEFAULT_TIMEOUT_S;
      for (let i = 1; i < a.length; i++) {
        if (a[i] === "-F") force = true;
        else if (a[i] === "-t" && i < a.length - 1) timeoutS = atoi(a[++i]);
        else einval(`live-update -s: unexpected "${a[i].slice(0, 16)}"`);
      }
      return { kind: "start", force, timeoutS };
    }
    case "-f":
      if (a.length !== 2) einval("live-update -f takes one file");
      return { kind: "file", file: a[1] };
    default:
      einval(`live-update: unknown option "${a[0].slice(0, 16)}"`);
  }
}

/** What `-f` learns about the file (./target.ts): null if it may be started, else the reply. */
export type FileCheck = (file: string) => string | null;

/** A session: one at a time, owned by the connection that sent `-f`. */
export interface Session<C> {
  readonly owner: C;
  /** The program to start (set by a successful -f). */
  file: string | null;
  /** -c: its command line instead of the daemon's own arguments. */
  cmdline: string | null;
  /** Set by -s: the switch is pending. */
  start: PendingStart | null;
}

export interface PendingStart {
  readonly force: boolean;
  readonly timeoutS: number;
  /** Date.now() when -s arrived. */
  readonly since: number;
  /** The -s request, answered when the switch is done or refused. */
  readonly reqId: number;
  readonly txId: number;
}

export type SessionReply =
  | { readonly kind: "reply"; readonly text: string }
  /** -s accepted: no reply now (./controller.ts answers it). */
  | { readonly kind: "delayed" };

/** The session state machine. `C` is the connection (the core's Client). */
export class LiveUpdateSession<C> {
  private current: Session<C> | null = null;

  constructor(private readonly checkFile: FileCheck, private readonly now: () => number = Date.now) {}

  /** The session, if one is active. */
  get session(): Session<C> | null {
    return this.current;
  }

  /** From `-f` on, a connection without a transaction does not start one (cxenstored's rule). */
  get active(): boolean {
    return this.current !== null;
  }

  /** A request of connection `c`; `reqId`/`txId` are kept for a delayed -s. */
  handle(c: C, r: LiveUpdateRequest, reqId: number, txId: number): SessionReply {
    switch (r.kind) {
      case "file": {
        if (this.current !== null) return text("live-update session already active.");
        // As cxenstored: the session begins before the file is checked; a refused file leaves it
        // open (xenstore-control sends -a after any failure).
        this.current = { owner: c, file: null, cmdline: null, start: null };
        const problem = this.checkFile(r.file);
        if (problem !== null) return text(problem);
        this.current.file = r.file;
        return text("OK");
      }
      case "cmdline":
        if (this.current === null || this.current.owner !== c) return text("Not in live-update session.");
        this.current.cmdline = r.cmdline;
        return text("OK");
      case "start":
        if (this.current === null || this.current.owner !== c) return text("Not in live-update session.");
        if (this.current.file === null) return text("No binary given.");
        if (this.current.start !== null) return text("live-update already started.");
        this.current.start = { force: r.force, timeoutS: r.timeoutS, since: this.now(), reqId, txId };
        return { kind: "delayed" };
      case "abort":
        if (this.current === null) return text("No live-update session active.");
        this.current = null;
        return text("OK");
    }
  }

  /** End the session (switch refused or failed, owner gone). */
  end(): void {
    this.current = null;
  }
}

function text(t: string): SessionReply {
  return { kind: "reply", text: t };
}

/** A connection's open transactions as the -s rule sees them. */
export interface TransactionAge {
  /** As cxenstored's conn->id in its reply: the domain id. */
  readonly domid: number;
  /** Date.now() when its oldest open transaction started. */
  readonly oldestStart: number;
}

export type StartVerdict =
  | { readonly kind: "wait" }
  | { readonly kind: "go"; readonly dropsTransactions: boolean }
  | { readonly kind: "refuse"; readonly text: string };

/**
 * cxenstored 4.17's rule (lu_check_lu_allowed, do_lu_start): go when no transaction is open, or with
 * -F when every open one is older than the timeout; wait until the timeout; then go with -F (the
 * transactions are dropped) or refuse naming the long-running ones.
 */
export function startVerdict(p: PendingStart, open: readonly TransactionAge[], now: number): StartVerdict {
  const timeoutMs = p.timeoutS * 1000;
  const long = open.filter((t) => now - t.oldestStart >= timeoutMs);
  const allowed = open.length === 0 || (p.force && long.length === open.length);
  if (allowed) return { kind: "go", dropsTransactions: open.length > 0 };
  if (now < p.since + timeoutMs) return { kind: "wait" };
  if (p.force) return { kind: "go", dropsTransactions: true };
  if (long.length === 0) return { kind: "refuse", text: "Overlapping transactions" };
  let out = "Domains with long running transactions:";
  for (const t of long) out += `\nDomain ${t.domid}: ${Math.floor((now - t.oldestStart) / 1000)} s`;
  return { kind: "refuse", text: out };
}
