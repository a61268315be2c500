// Every fuzz target, in the order the runner takes them.
import type { Target } from "../engine.ts";
import { requestTarget, wireTarget } from "./wire.ts";
import { ringTarget } from "./ring.ts";
import { fileBackendTarget, fileRecordsTarget } from "./file.ts";
import { sqliteFileTarget, sqliteRowsTarget } from "./sqlite.ts";
import { tdbRecordTarget, tdbStoreTarget } from "./tdb.ts";
import { configTarget } from "./config.ts";
import { migrationTarget } from "./migration.ts";

export const TARGETS: readonly Target[] = [
  wireTarget,
  requestTarget,
  ringTarget,
  fileRecordsTarget,
  fileBackendTarget,
  sqliteRowsTarget,
  sqliteFileTarget,
  tdbRecordTarget,
  tdbStoreTarget,
  configTarget,
  migrationTarget,
];

export function targetNamed(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no fuzz target "${name}" (${TARGETS.map((x) => x.name).join(", ")})`);
  return t;
}
