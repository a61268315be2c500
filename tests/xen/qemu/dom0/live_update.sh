# Plan L of the real-Xen E2E (sourced by tests/xen/qemu/dom0/init.sh as /e2e/live_update.sh; its
# helpers and variables are init.sh's): scenario 6, dxenstored replaced by itself with
# `xenstore-control live-update /usr/sbin/dxenstored` (dx → dx) LU_SWITCHES times while a guest
# (role lu) does xenstore round trips over its ring throughout, each reply checked, and counts them.
# After every switch: same pid, the daemon's adoption line names the rings and drops nothing, the
# guest's rounds go on, its watch (registered before the first switch) fires, a dom0 socket watcher
# (the same connection) gets its event, dom0's own ring answers (when it did before). At the end the
# guest reports its rounds (no error; the longest round is the switch's stall), and `xl shutdown`
# shows VIRQ_DOM_EXC (bound again by each new program) still releases the domain.
# Plan LC: dom0 started Debian's cxenstored (init.sh): cx → dx, dx → dx twice, then dx → cx (the way back).
LU_SWITCHES=2
LU_TARGET=/usr/sbin/dxenstored
LU_CX=/usr/lib/xen-4.17/bin/xenstored

# lu_ring0 DEVICE: dom0's name read over dom0's own ring (libxenstore takes a character device in
# XENSTORED_PATH as the kernel's xenbus, i.e. dom0's ring, rather than the daemon's socket)
lu_ring0() { XENSTORED_PATH=$1 xenstore-read /local/domain/0/name 2>&1; }
# lu_count PATTERN: lines of the guest's console with PATTERN
lu_count() { grep -ac "$1" /var/log/xen/console/guest-e2e-lu.log 2>/dev/null; }

plan_l() {
  local first=dx
  [ "$PLAN" = LC ] && first=cx && LU_SWITCHES=4
  begin s6 "live update $first → dx, dx → dx$([ $first = cx ] && echo ", dx → cx") ($LU_SWITCHES switches) while a guest's xenstore traffic continues"
  if [ "$first" = dx ] && [ -n "$REF" ]; then
    note "live update" "dxenstored only: this plan switches /usr/sbin/dxenstored to itself"
    end
    return
  fi
  start_fa_watch
  sleep 0.5
  GUESTS="$GUESTS e2e-lu"
  create_checked e2e-lu pv lu || { end; return; }
  local d=$CREATED_DOMID p0 i n0 n1 out rc adopted xb r0=no r to want nadopt=0
  if wait_guest e2e-lu "GUEST-S6-READY domid=$d " 120; then ms "guest busy with round trips"; else
    bad "guest reached scenario 6" "no GUEST-S6-READY"
    end
    return
  fi
  xenstore-watch /e2e/s6 > /tmp/s6.watch 2>&1 &
  local wpid=$!
  wait_for 10 sh -c "[ -s /tmp/s6.watch ]" || bad "dom0 watch on /e2e/s6 registered" "no registration event"
  for xb in /dev/xen/xenbus /proc/xen/xenbus; do [ -e $xb ] && break; done
  if [ -e "$xb" ] && [ "$(lu_ring0 $xb)" = Domain-0 ]; then
    r0=yes
    ok "dom0's own ring answers before the switches" "$xb"
  else note "dom0's own ring" "not checked: no answer over $xb before the switches ($(lu_ring0 $xb | head -1))"; fi
  p0=$(xsd_pid)
  if [ $first = cx ]; then
    chk "cxenstored serves before the first switch" "xenstored" "$(cat /proc/$p0/comm 2>&1)"
    touch $XSDLOG
    (tail -n +1 -f $XSDLOG | while read -r l; do echo "[xsd] $l"; done) &
  fi
  i=1
  while [ $i -le $LU_SWITCHES ]; do
    to=$LU_TARGET want=dxenstored
    [ $first = cx ] && [ $i = $LU_SWITCHES ] && to=$LU_CX want=xenstored
    n0=$(xenstore-read /local/domain/$d/data/s6/n 2>&1)
    ms "switch $i: xenstore-control live-update $to (guest at round $n0; $(cat /proc/$p0/comm) serves)"
    if [ $i = 1 ] && [ $first = cx ]; then
      # cxenstored passes its own options unless told: add a log file (its stderr is /dev/null)
      out=$(timeout 240 $XSCONTROL live-update -c "--pid-file /run/xenstore.pid --log-file $XSDLOG" $LU_TARGET 2>&1)
    else out=$(timeout 240 $XSCONTROL live-update $to 2>&1); fi
    rc=$?
    ms "switch $i: xenstore-control returned $rc"
    if [ $rc = 0 ]; then ok "switch $i: xenstore-control live-update succeeded" "$(echo "$out" | tr '\n' ' ')"; else
      bad "switch $i: xenstore-control live-update succeeded" "exit $rc: $(echo "$out" | tr '\n' ' ')"
    fi
    chk "switch $i: the same process serves (pid file)" "$p0" "$(xsd_pid)"
    chk "switch $i: the process is $want" "$want" "$(cat /proc/$p0/comm 2>&1)"
    [ $want = dxenstored ] && nadopt=$((nadopt + 1))
    adopted=$(grep -a "live update: adopted" $XSDLOG | sed -n "${nadopt}p")
    [ $want = xenstored ] && adopted="(cxenstored) $(grep -a "cxenstored 4.17 will drop\|cxenstored does not take" $XSDLOG | tail -2 | tr '\n' ' ')"
    case $adopted in
    "(cxenstored)"*) note "switch $i: cxenstored logs to syslog (not captured); dxenstored said before the exec" "${adopted#(cxenstored) }" ;;
    *"ring(s)"*"nothing dropped"*) ok "switch $i: the new program adopted the rings, dropped nothing" "${adopted#*live update: }" ;;
    *) bad "switch $i: the new program adopted the rings, dropped nothing" "[${adopted#*live update: }]; $(grep -a "live update" $XSDLOG | tail -3 | tr '\n' ' ')" ;;
    esac
    n1=$(xenstore-read /local/domain/$d/data/s6/n 2>&1)
    if wait_for 60 sh -c "[ \"\$(xenstore-read /local/domain/$d/data/s6/n)\" -gt $((n1 + 20)) ]"; then
      ok "switch $i: the guest's round trips go on over its ring" "round $n0 before, $n1 just after, $(xenstore-read /local/domain/$d/data/s6/n) now"
    else bad "switch $i: the guest's round trips go on over its ring" "round $n0 before, $n1 just after, $(xenstore-read /local/domain/$d/data/s6/n 2>&1) 60 s later; $(lu_count GUEST-S6-ROUNDS) ROUNDS lines"; fi
    xenstore-write /local/domain/$d/data/s6/w/x "switch-$i"
    if wait_for 30 sh -c "[ \"\$(grep -ac 'GUEST-S6-EVENT data/s6/w/x' /var/log/xen/console/guest-e2e-lu.log)\" -ge $i ]"; then
      ok "switch $i: the guest's watch (registered before the first switch) fires" ""
    else bad "switch $i: the guest's watch fires" "$(lu_count 'GUEST-S6-EVENT data/s6/w/x') event(s)"; fi
    xenstore-write /e2e/s6/x "switch-$i"
    if wait_for 10 sh -c "[ \"\$(grep -c '^/e2e/s6/x' /tmp/s6.watch)\" -ge $i ]"; then
      ok "switch $i: dom0's socket watcher (the same connection) gets its event" ""
    else bad "switch $i: dom0's socket watcher gets its event" "$(tr '\n' ' ' < /tmp/s6.watch)"; fi
    [ $r0 = yes ] && chk "switch $i: dom0's own ring answers" "Domain-0" "$(lu_ring0 $xb)"
    i=$((i + 1))
  done
  xenstore-write /local/domain/$d/data/s6/stop stop
  if wait_guest e2e-lu "GUEST-S6-ROUNDS" 60; then
    r=$(grep -a "GUEST-S6-ROUNDS" /var/log/xen/console/guest-e2e-lu.log | tr -d '\r' | tail -1)
    r=${r#*GUEST-S6-ROUNDS }
    case $r in
    ROUNDS*) ok "the guest's round trips: every reply right, no error" "$r (max_us: the longest round, the switches' stall)" ;;
    *) bad "the guest's round trips: every reply right, no error" "$r" ;;
    esac
  else bad "the guest reported its round trips" "no GUEST-S6-ROUNDS"; fi
  kill $wpid 2> /dev/null
  if timeout 90 xl shutdown -w e2e-lu > /tmp/xl-shutdown.log 2>&1; then
    ok "xl shutdown after the switches" ""
  else
    bad "xl shutdown after the switches" "$(cat /tmp/xl-shutdown.log)"
    xl destroy e2e-lu 2> /dev/null
  fi
  if wait_for 20 node_gone /local/domain/$d; then
    ok "the domain is released after the switches (VIRQ_DOM_EXC bound again)" ""
  else bad "the domain is released after the switches (VIRQ_DOM_EXC bound again)" "$(xenstore-ls /local/domain/$d 2>&1 | head -3 | tr '\n' ' ')"; fi
  end
}
