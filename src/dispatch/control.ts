// CONTROL (xenstore-control): the commands of Debian's cxenstored 4.17 with its exact reply formats and
// argument rules (golden outputs: tests/ops/golden/), plus `stats`. An unknown command or a bad
// argument list answers EINVAL, which xenstore-control turns into "Command not supported" and the
// help list (plus dxenstored's `stats`, `policy` and `policy-reload`). The handler decides nothing about access (the dispatcher asked the policy for the
// "control" capability first) and owns no state: quotas, usage, the trace log and the statistics
// come from a ControlContext the daemon gives it.
import { XsError } from "../common/xs_error.ts";
import type { ControlQuotaSource, DomainQuotaReport } from "../quota/options.ts";
import { CONTROL_QUOTAS, type QuotaRow } from "../quota/table.ts";
import { PAYLOAD_MAX } from "../protocol/wire.ts";
import type { Client } from "./client.ts";
import type { ControlHandler } from "./extensions.ts";

/** Current quota values as CONTROL shows and sets them (src/quota/control.ts). */
export type QuotaSettings = ControlQuotaSource["settings"];

type QuotaKind = "hard" | "soft";

/** What `quota <domid>` reports (cxenstored's per-domain accounting). */
export type DomainUsage = DomainQuotaReport["usage"];

/** The trace log (`-T`, `log on|off`, `logfile`, `print`). */
export interface TraceLog {
  on(): void;
  off(): void;
  setFile(path: string): void;
  /** The configured trace file, or null. */
  file(): string | null;
  print(text: string): void;
}

export interface ControlContext {
  readonly quotas: QuotaSettings;
  /** Usage of `domid`, or null if there is no such domain (ENOENT, as cxenstored). */
  usage(domid: number): DomainUsage | null;
  /** Problems found in the store (each is logged; the reply is OK either way, as cxenstored). */
  checkStore(): readonly string[];
  readonly trace: TraceLog;
  /** A memory report appended to `file`; false if it could not be written. */
  memreport(file: string): boolean;
  /** The statistics as Prometheus text lines, optionally only the metrics whose name starts with `prefix`. */
  stats(prefix: string | undefined): string;
  /** The slowest recent requests and the last refusals (`recent`, dxenstored only); "" if not kept. */
  recent?(): string;
  /** The policy chain (docs/plugins.md): its status, and a reload ("OK:", "pending:" or "error:" first). */
  readonly policy: { status(): string; reload(): string };
  /** Log one line (cxenstored writes check results to its trace/syslog). */
  log(level: "info" | "warn", msg: string): void;
}

const OK = "OK\0";
export const LIVE_UPDATE_UNSUPPORTED = "live-update is not supported without dxenstored's socket transport";

interface Command {
  readonly name: string;
  readonly pars: string;
  run(c: Client, args: readonly string[]): string;
}

function einval(why: string): never {
  throw new XsError("EINVAL", why);
}

/**
 * C's atoi(): optional leading whitespace and sign, then digits up to the first non-digit ("x" is 0,
 * "12ab" is 12). Values beyond 32 bits saturate instead of wrapping (cxenstored's overflow is undefined).
 */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s)!;
  const digits = m[2].replace(/^0+/, "").slice(0, 12);
  const n = digits === "" ? 0 : Number(digits);
  return m[1] === "-" ? -n : n;
}

const INT_MAX = 0x7fffffff;

/** `%-17s: %8d %s\n` per quota, under "Quota settings:" (cxenstored's quota_show_current). */
function showQuotas(q: QuotaSettings, kind: QuotaKind, rows: readonly QuotaRow[]): string {
  let out = "Quota settings:\n";
  for (const r of rows) {
    out += `${r.controlName.padEnd(17)}: ${String(q.get(kind, r.controlName)).padStart(8)} ${r.descr}\n`;
  }
  return out + "\0";
}

/** `%-16s: %8d\n` per counter, under "Domain <id>:" (cxenstored's domain_get_quota). */
export function formatUsage(domid: number, u: DomainUsage): string {
  const row = (name: string, v: number) => `${name.padEnd(16)}: ${String(v).padStart(8)}\n`;
  return `Domain ${domid}:\n` + row("nodes", u.nodes) + row("watches", u.watches) +
    row("transactions", u.transactions) + row("outstanding", u.outstanding) + row("memory", u.memory) + "\0";
}

export class ControlCommands implements ControlHandler {
  private readonly commands: readonly Command[];

  constructor(private readonly ctx: ControlContext) {
    // cxenstored 4.17's table order (the help text lists them in this order), `stats` added before help.
    this.commands = [
      { name: "check", pars: "", run: (_c, a) => this.check(a) },
      { name: "log", pars: "on|off", run: (_c, a) => this.logOnOff(a) },
      {
        name: "live-update",
        pars: "[-c <cmdline>] [-F] [-t <timeout>] <file>\n    Default timeout is 60 seconds.",
        run: (_c, a) => this.liveUpdate(a),
      },
      { name: "logfile", pars: "<file>", run: (_c, a) => this.logfile(a) },
      { name: "memreport", pars: "[<file>]", run: (_c, a) => this.memreport(a) },
      { name: "print", pars: "<string>", run: (_c, a) => this.print(a) },
      { name: "quota", pars: "[set <name> <val>|<domid>]", run: (_c, a) => this.quota(a) },
      { name: "quota-soft", pars: "[set <name> <val>]", run: (_c, a) => this.quotaSoft(a) },
      { name: "stats", pars: "[<metric-prefix> [<skip-lines>]]", run: (_c, a) => this.stats(a) },
      { name: "recent", pars: "", run: (_c, a) => this.noArgs("recent", a, () => this.ctx.recent?.() ?? "") },
      { name: "policy", pars: "", run: (_c, a) => this.noArgs("policy", a, () => ctx.policy.status()) },
      {
        name: "policy-reload",
        pars: "",
        run: (_c, a) => this.noArgs("policy-reload", a, () => ctx.policy.reload()),
      },
      { name: "help", pars: "", run: (_c, a) => this.help(a) },
    ];
  }

  handle(c: Client, args: readonly string[]): string {
    const cmd = this.commands.find((x) => x.name === args[0]);
    if (cmd === undefined) einval(`unknown control command "${args[0].slice(0, 32)}"`);
    return cmd.run(c, args.slice(1));
  }

  /** dxenstored's own text commands (the policy chain: docs/plugins.md): one line of text back. */
  private noArgs(name: string, a: readonly string[], run: () => string): string {
    if (a.length !== 0) einval(`${name} takes no argument`);
    const text = run();
    return `${text.endsWith("\n") ? text : text + "\n"}\0`;
  }

  private check(a: readonly string[]): string {
    if (a.length !== 0) einval("check takes no argument");
    const problems = this.ctx.checkStore();
    for (const p of problems) this.ctx.log("warn", `check: ${p}`);
    this.ctx.log("info", `check: store checked, ${problems.length} problem(s)`);
    return OK;
  }

  private logOnOff(a: readonly string[]): string {
    if (a.length !== 1) einval("log needs on|off");
    if (a[0] === "on") this.ctx.trace.on();
    else if (a[0] === "off") this.ctx.trace.off();
    else einval("log needs on|off");
    return OK;
  }

  /**
   * The daemon answers live-update before the dispatcher sees it (src/live_update/controller.ts sits
   * between the socket transport and the core); a core without it (in-process harnesses) refuses
   * with a plain-text reply xenstore-control prints.
   */
  private liveUpdate(a: readonly string[]): string {
    if (a.length < 1) einval("live-update needs arguments");
    return LIVE_UPDATE_UNSUPPORTED + "\0";
  }

  private logfile(a: readonly string[]): string {
    if (a.length !== 1) einval("logfile needs a file");
    this.ctx.trace.setFile(a[0]);
    return OK;
  }

  private memreport(a: readonly string[]): string {
    if (a.length > 1) einval("memreport takes at most a file");
    // Without a file the report goes to the trace file; with neither, cxenstored answers EBADF,
    // which is not a xenstore errno and reaches the client as EINVAL.
    const file = a.length === 1 ? a[0] : this.ctx.trace.file();
    if (file === null) einval("memreport: no file and no trace file");
    if (!this.ctx.memreport(file)) einval(`memreport: cannot write ${file}`);
    return OK;
  }

  private print(a: readonly string[]): string {
    if (a.length !== 1) einval("print needs one string");
    this.ctx.trace.print(a[0]);
    return OK;
  }

  private quota(a: readonly string[]): string {
    if (a.length === 0) return showQuotas(this.ctx.quotas, "hard", CONTROL_QUOTAS.hard);
    if (a[0] === "set") return this.quotaSet("hard", a.slice(1));
    if (a.length !== 1) einval("quota takes one domid");
    const domid = atoi(a[0]);
    const u = domid >= 0 && domid <= 0xffff ? this.ctx.usage(domid) : null;
    if (u === null) throw new XsError("ENOENT", `no domain ${a[0].slice(0, 16)}`);
    return formatUsage(domid, u);
  }

  private quotaSoft(a: readonly string[]): string {
    if (a.length === 0) return showQuotas(this.ctx.quotas, "soft", CONTROL_QUOTAS.soft);
    if (a[0] === "set") return this.quotaSet("soft", a.slice(1));
    einval("quota-soft takes set <name> <val>");
  }

  private quotaSet(kind: QuotaKind, a: readonly string[]): string {
    if (a.length !== 2) einval("quota set needs <name> <val>");
    const v = atoi(a[1]);
    // cxenstored refuses values below 1; it silently wraps values beyond 32 bits, which we refuse.
    if (v < 1 || v > INT_MAX) einval(`bad quota value "${a[1].slice(0, 16)}"`);
    if (!this.ctx.quotas.set(kind, a[0], v)) einval(`unknown quota "${a[0].slice(0, 32)}"`);
    return OK;
  }

  /** `stats [prefix [skip]]`: a reply holds 4 KiB; the next page starts `skip` sample lines further. */
  private stats(a: readonly string[]): string {
    if (a.length > 2) einval("stats takes at most a metric prefix and a line count to skip");
    const text = this.ctx.stats(a[0]);
    if (a.length < 2) return fitReply(text);
    if (!/^[0-9]{1,9}$/.test(a[1])) einval("stats: bad line count");
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    return fitReply(lines.slice(Number(a[1])).map((l) => l + "\n").join(""), Number(a[1]));
  }

  private help(a: readonly string[]): string {
    if (a.length !== 0) einval("help takes no argument");
    let out = "";
    for (const c of this.commands) out += `${c.name}\t${c.pars}\n`;
    return out + "\0";
  }
}

/** Cut `text` at a line boundary so the reply (with its NUL) fits one message, saying what was cut. */
export function fitReply(text: string, skipped = 0): string {
  if (text.length + 1 <= PAYLOAD_MAX) return text + "\0";
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let out = "";
  let kept = 0;
  for (const l of lines) {
    const note = `# truncated: ${lines.length - kept} more lines; use "stats <prefix> ${
      skipped + kept
    }" for the next ones, or --metrics-file\n`;
    if (out.length + l.length + 1 + note.length + 1 > PAYLOAD_MAX) return out + note + "\0";
    out += l + "\n";
    kept++;
  }
  return out + "\0";
}
