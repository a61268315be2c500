# Sourced by dom0's /init (tests/xen/qemu/dom0/init.sh; installed as /e2e/diagnostics.sh by
# e2e/xen/package.ts): where a guest request's time goes in dom0 (docs/domains.md, "Third pass").
# Uses init.sh's say, up, xsd_pid, XSD, pump and wait_guest.

# threads_snapshot PHASE: the daemon's threads (/proc/PID/task/*/stat and status) and dom0's
# interrupts, saved raw (three cats: the guest's benchmark may be running); threads_report PHASE...
# prints them as E2E-THREADS lines (tid, name, user and system ticks, the CPU it last ran on,
# voluntary and involuntary context switches) and E2E-IRQ lines: which threads a guest's READs wake,
# and on which vCPUs.
threads_snapshot() {
  local p
  p=$(xsd_pid)
  cat /proc/$p/task/*/stat > /tmp/thr-$1.stat 2> /dev/null
  cat /proc/$p/task/*/status > /tmp/thr-$1.status 2> /dev/null
  cat /proc/interrupts > /tmp/thr-$1.irq
}
threads_report() {
  local ph
  for ph in "$@"; do
    awk -v s="$(awk '/^Pid:/ { t = $2 } /^voluntary_ctxt/ { v[t] = $2 } /^nonvoluntary_ctxt/ { printf "%s:%s:%s ", t, v[t], $2 }' /tmp/thr-$ph.status)" '
      BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) { split(a[i], f, ":"); cs[f[1]] = "vcs=" f[2] " ivcs=" f[3] } }
      { c = $0; sub(/^[0-9]+ \(/, "", c); name = substr(c, 1, index(c, ")") - 1); gsub(/ /, "_", name)
        sub(/^[^)]*\) /, "", c); split(c, f, " ")
        printf "E2E-THREADS xsd='"$XSD"' phase='"$ph"' tid=%s %s utime=%s stime=%s cpu=%s %s\n", $1, name, f[12], f[13], f[37], cs[$1] }' /tmp/thr-$ph.stat |
      sed "s/^/[dom0 $(up)] /"
    grep -E 'xenbus|evtchn|xen-dyn|xen-percpu|xen-pirq' /tmp/thr-$ph.irq | tr -s ' ' | sed "s|^|[dom0 $(up)] E2E-IRQ xsd=$XSD phase=$ph |"
  done
}

# wait_guest_quiet NAME PATTERN SECONDS: wait_guest without its five forks every 0.2 s: busybox's
# tail -f looks at the log once a second and the shell's own read matches its lines. Plan B waits so
# through its guest's benchmark: wait_guest's forks were a steady load on the machine during the
# benchmark's windows (e2e:xen --tcg-counts; docs/domains.md, "What TCG emulates per guest READ").
wait_guest_quiet() {
  local f=/var/log/xen/console/guest-$1.log q=/tmp/wait-$1.fifo tp l rc=1
  rm -f $q && mkfifo $q || { wait_guest "$@"; return; }
  timeout $3 tail -n +1 -f $f > $q 2> /dev/null &
  tp=$!
  while read -r l; do
    case $l in *"$2"*) rc=0; break ;; esac
  done < $q
  kill $tp 2> /dev/null
  rm -f $q
  pump; return $rc
}
