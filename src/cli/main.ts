// dxenstored: the daemon's command line. Parses options, builds the core and serves the Unix socket
// until SIGINT/SIGTERM, then removes the socket file.
import { isLogLevel, log, setLogLevel } from "../common/log.ts";
import { Core } from "../dispatch/core.ts";
import { LegacyPolicy } from "../policy/legacy.ts";
import { UnixServer } from "../server/unix_server.ts";
import type { Client } from "../dispatch/client.ts";
import {
  BackendError,
  type BackendSpec,
  openDatabase,
  parseBackendSpec,
  type SyncMode,
} from "../backend/backend.ts";
import { createBackend } from "../backend/open.ts";

const USAGE = `Usage: dxenstored [options]

  --socket PATH       Unix socket to serve (default: $XENSTORED_PATH, else
                      $XENSTORED_RUNDIR/socket, else ./run/socket)
  --log-level LEVEL   error | warn | info | debug (default: info)
  --max-out-bytes N   unread output bytes after which a socket client is
                      disconnected as stuck (default: 8388608)
  --max-watch-events N
                      unread watch events after which a socket client is
                      disconnected as stuck (default: 65536)
  --backend SPEC      memory | file:<dir> | sqlite:<file> (default: memory);
                      see docs/backends.md
  --sync MODE         always | none: fsync each commit before replying
                      (default: always)
  --recover           start from the valid prefix of a damaged store
  -h, --help          this text
`;

export interface CliOptions {
  socket: string;
  logLevel: string;
  /** Output limits of socket connections (docs/watches.md); unset = the server's defaults. */
  maxOutBytes?: number;
  maxWatchEvents?: number;
  /** Storage backend (docs/backends.md). */
  backend: BackendSpec;
  sync: SyncMode;
  recover: boolean;
}

/** A strictly positive decimal integer option value. */
function positiveInt(flag: string, v: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got "${v}"`);
  return n;
}

export function parseArgs(
  argv: readonly string[],
  env: (k: string) => string | undefined,
): CliOptions | string {
  const rundir = env("XENSTORED_RUNDIR");
  const opts: CliOptions = {
    socket: env("XENSTORED_PATH") ?? (rundir ? `${rundir}/socket` : "./run/socket"),
    logLevel: "info",
    backend: { kind: "memory" },
    sync: "always",
    recover: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    try {
      switch (flag) {
        case "--socket":
          opts.socket = value();
          break;
        case "--log-level":
          opts.logLevel = value();
          if (!isLogLevel(opts.logLevel)) return `unknown log level "${opts.logLevel}"`;
          break;
        case "--max-out-bytes":
          opts.maxOutBytes = positiveInt(flag, value());
          break;
        case "--max-watch-events":
          opts.maxWatchEvents = positiveInt(flag, value());
          break;
        case "--backend": {
          const b = parseBackendSpec(value());
          if (typeof b === "string") return b;
          opts.backend = b;
          break;
        }
        case "--sync": {
          const m = value();
          if (m !== "always" && m !== "none") return `--sync must be always or none, got "${m}"`;
          opts.sync = m;
          break;
        }
        case "--recover":
          opts.recover = true;
          break;
        case "-h":
        case "--help":
          return "help";
        default:
          return `unknown option "${a}"`;
      }
    } catch (e) {
      return (e as Error).message;
    }
  }
  return opts;
}

async function main(): Promise<number> {
  const parsed = parseArgs(Deno.args, (k) => Deno.env.get(k));
  if (parsed === "help") {
    console.log(USAGE);
    return 0;
  }
  if (typeof parsed === "string") {
    console.error(`dxenstored: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  setLogLevel(parsed.logLevel as Parameters<typeof setLogLevel>[0]);
  const backend = createBackend(parsed.backend, { sync: parsed.sync, recover: parsed.recover });
  let db;
  try {
    db = openDatabase(backend);
  } catch (e) {
    // A damaged store (BackendError explains what to do) or an unreadable one: refuse to start.
    log("error", e instanceof BackendError ? e.message : `${backend.name}: ${(e as Error).message}`);
    backend.close();
    return 1;
  }
  const core = new Core({ policy: new LegacyPolicy(), db });
  const server = new UnixServer<Client>({
    path: parsed.socket,
    maxOutBytes: parsed.maxOutBytes,
    maxOutEvents: parsed.maxWatchEvents,
  }, core);
  const dir = parsed.socket.includes("/") ? parsed.socket.slice(0, parsed.socket.lastIndexOf("/")) : ".";
  if (dir) Deno.mkdirSync(dir, { recursive: true });
  try {
    Deno.removeSync(parsed.socket); // a stale socket from a previous run
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  server.listen();
  log("info", `serving ${parsed.socket} (policy ${core.dispatcher.policy.name}, pid ${Deno.pid})`);
  const stop = (sig: string) => () => {
    log("info", `${sig} received, shutting down`);
    server.stop();
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM"));
  await server.run();
  try {
    Deno.removeSync(parsed.socket);
  } catch { /* already gone */ }
  backend.close();
  log("info", "stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
