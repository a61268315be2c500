/**
 * Preemption points on a ring page: every load and store of one of its fields first calls a hook,
 * which may run the other side of the ring there (tests of lost wake-ups: tests/xen/ring_test.ts,
 * tests/transport/ring_wakeup_test.ts). Only that page object changes: another RingPage over the
 * same bytes (the peer's) is not affected.
 */
import type { Field, RingPage } from "../../src/xen/ring.ts";

export function preemptible(page: RingPage, before: (f: Field) => void): void {
  const get = page.get.bind(page);
  const set = page.set.bind(page);
  page.get = (f: Field) => {
    before(f);
    return get(f);
  };
  page.set = (f: Field, v: number) => {
    before(f);
    set(f, v);
  };
}
