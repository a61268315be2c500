/**
 * Parses the serial log of one real-Xen E2E boot (tests/xen/qemu/dom0/init.sh writes the protocol):
 *
 *   [dom0 <uptime>] E2E-SCENARIO <s> BEGIN <title> | E2E-SCENARIO <s> PASS|FAIL
 *   [dom0 <uptime>] E2E-MS <s> <seconds since BEGIN> <milestone>
 *   [dom0 <uptime>] E2E-CHECK <s> ok|FAIL|note <what> :: <detail>
 *   [dom0 <uptime>] E2E-BENCH key=value ...
 *   [dom0 <uptime>] E2E-STRACE key=value ...   (system calls counted during a load phase, plan P)
 *   [dom0 <uptime>] E2E-CPU key=value ...      (the daemon's CPU ticks over a load phase, plan P)
 *   [xsd] <line>                    (the daemon's own log, streamed by dom0 while it runs)
 *   [dom0 <uptime>] E2E-RESULT: PASS|FAIL (...)
 *   [guest <name>] GUEST-CHECK <s> ok|FAIL <what> :: <detail>
 */

export type CheckStatus = "ok" | "FAIL" | "note";

export interface Check {
  readonly status: CheckStatus;
  readonly what: string;
  readonly detail: string;
  /** "dom0" or the guest's name. */
  readonly source: string;
}

export interface Milestone {
  readonly seconds: number;
  readonly label: string;
}

export interface ScenarioLog {
  readonly id: string;
  title: string;
  verdict?: "PASS" | "FAIL";
  readonly milestones: Milestone[];
  readonly checks: Check[];
  /** Index of the BEGIN line in BootLog.lines, and of the verdict line (or the last line). */
  firstLine: number;
  lastLine: number;
}

export interface BootLog {
  readonly lines: readonly string[];
  readonly scenarios: Map<string, ScenarioLog>;
  readonly bench: Record<string, string>[];
  /** E2E-STRACE lines: xsd, phase, requests, threads, then <syscall>=<calls>[/<failed>]. */
  readonly strace: Record<string, string>[];
  /** E2E-CPU lines: xsd, phase, hz, main_user, main_sys, other_user, other_sys (clock ticks). */
  readonly cpu: Record<string, string>[];
  /** The xenstore daemon's log lines dom0 printed on failure. */
  readonly xsdLog: string[];
  /** "PASS" or "FAIL (...)" from E2E-RESULT, if dom0 got that far. */
  result?: string;
}

const DOM0 = /\[dom0 ([0-9.]+)\] (.*)$/;
const GUEST = /\[guest ([A-Za-z0-9_-]+)\] (.*)$/;
const XSD = /\[xsd\] (.*)$/;
const CHECK = /^(\S+) (ok|FAIL|note) (.*?)(?: :: (.*))?$/;

export function parseSerialLog(text: string): BootLog {
  const lines = text.split("\n").map((l) => l.replace(/\r/g, ""));
  const log: BootLog = { lines, scenarios: new Map(), bench: [], strace: [], cpu: [], xsdLog: [] };
  let current: ScenarioLog | undefined;
  const scenario = (id: string, at: number): ScenarioLog => {
    let s = log.scenarios.get(id);
    if (!s) {
      s = { id, title: "", milestones: [], checks: [], firstLine: at, lastLine: at };
      log.scenarios.set(id, s);
    }
    return s;
  };
  lines.forEach((line, i) => {
    if (current && current.verdict === undefined) current.lastLine = i;
    const xsd = XSD.exec(line);
    if (xsd) {
      log.xsdLog.push(xsd[1]);
      return;
    }
    const guest = GUEST.exec(line);
    if (guest) {
      const m = /GUEST-CHECK (.*)$/.exec(guest[2]);
      const c = m ? CHECK.exec(m[1]) : null;
      if (c) scenario(c[1], i).checks.push(check(c, guest[1]));
      return;
    }
    const dom0 = DOM0.exec(line);
    if (!dom0) return;
    const msg = dom0[2];
    const [kind, ...rest] = msg.split(" ");
    switch (kind) {
      case "E2E-SCENARIO": {
        const [id, what, ...title] = rest;
        const s = scenario(id, i);
        if (what === "BEGIN") {
          s.title = title.join(" ");
          s.firstLine = i;
          current = s;
        } else if (what === "PASS" || what === "FAIL") {
          s.verdict = what;
          s.lastLine = i;
        }
        break;
      }
      case "E2E-MS": {
        const [id, secs, ...label] = rest;
        scenario(id, i).milestones.push({ seconds: Number(secs), label: label.join(" ") });
        break;
      }
      case "E2E-CHECK": {
        const c = CHECK.exec(rest.join(" "));
        if (c) scenario(c[1], i).checks.push(check(c, "dom0"));
        break;
      }
      case "E2E-BENCH":
        log.bench.push(keyValues(rest));
        break;
      case "E2E-STRACE":
        log.strace.push(keyValues(rest));
        break;
      case "E2E-CPU":
        log.cpu.push(keyValues(rest));
        break;
      case "E2E-RESULT:":
        log.result = rest.join(" ");
        break;
    }
  });
  return log;
}

function keyValues(words: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    words.filter((w) => w.includes("=")).map((kv) => kv.split("=", 2) as [string, string]),
  );
}

function check(c: RegExpExecArray, source: string): Check {
  return { status: c[2] as CheckStatus, what: c[3], detail: c[4] ?? "", source };
}

/** The serial-log lines worth showing for a failed scenario: its section, Xen's and the kernels' complaints. */
export function relevantLines(log: BootLog, s: ScenarioLog | undefined, max = 160): string[] {
  const from = s ? s.firstLine : 0;
  const to = s ? s.lastLine : log.lines.length - 1;
  const section = log.lines.slice(from, to + 1).filter((l) => l.trim() !== "" && !XSD.test(l));
  return section.length > max
    ? [`... (${section.length - max} earlier lines)`, ...section.slice(-max)]
    : section;
}
