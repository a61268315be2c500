// Every check of the suite, by module (one module per chapter of docs/spec/).
import type { Check } from "../lib/check.ts";
import { checks as frame } from "./frame.ts";
import { checks as paths } from "./paths.ts";
import { checks as perms } from "./perms.ts";
import { checks as nodes } from "./nodes.ts";
import { checks as txn } from "./txn.ts";
import { checks as watch } from "./watch.ts";
import { checks as domain } from "./domain.ts";
import { checks as ring } from "./ring.ts";

export const CHECKS: readonly Check[] = [
  ...frame,
  ...paths,
  ...perms,
  ...nodes,
  ...txn,
  ...watch,
  ...domain,
  ...ring,
];

/**
 * Checks run after all others: NODE-5 tries `RM /`, which a daemon that breaks the requirement executes,
 * wiping the tree every later check would use.
 */
export const LAST: ReadonlySet<string> = new Set(["NODE-5"]);
