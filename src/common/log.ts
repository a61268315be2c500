// Leveled logging to stderr with syslog-style "<N>" priority prefixes (journald understands them).
export type LogLevel = "error" | "warn" | "info" | "debug";
const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let current: LogLevel = "info";
const enc = new TextEncoder();

/** Where a log line goes instead of stderr (a file, syslog: src/observe/log_sink.ts). */
export type LogSink = (priority: number, level: LogLevel, msg: string) => void;
let sink: LogSink | null = null;

/** Route log lines to `s` (null: back to stderr). */
export function setLogSink(s: LogSink | null): void {
  sink = s;
}

export function setLogLevel(l: LogLevel): void {
  current = l;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

export function log(level: LogLevel, msg: string): void {
  if (ORDER[level] > ORDER[current]) return;
  if (sink !== null) {
    sink(PRIORITY[level], level, msg);
    return;
  }
  try {
    Deno.stderr.writeSync(enc.encode(`<${PRIORITY[level]}>dxenstored: ${msg}\n`));
  } catch {
    // stderr gone (closed terminal): logging must never take the daemon down.
  }
}
