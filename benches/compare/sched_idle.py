#!/usr/bin/env python3
"""Read `perf script -F cpu,time,event,trace` output of sched:sched_switch events recorded
system-wide (-a) around one harness run, and print how the CPUs spent the run:

  idle       time each CPU ran its idle task
  stacked    time a pool thread was runnable but waiting for a CPU (switched out
             preempted, state R, until it ran again) while another CPU was idle
  ran        time each thread ran (by name: the harness's thread, which submits and
             consumes, the workers, the feeder)

Stacked time is the scheduler's share of a loss: work was ready, a CPU was free, and
the two were not brought together. Used by scripts/sched_trace.sh.
"""
import re
import sys

SWITCH = re.compile(
    r"\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) "
    r"prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)"
)


def main(path, prefix):
    events = []
    for line in open(path):
        m = SWITCH.match(line)
        if m:
            cpu, t, _pcomm, ppid, pstate, ncomm, npid = m.groups()
            events.append((float(t), int(cpu), int(ppid), pstate, ncomm, int(npid)))
    if not events:
        sys.exit("no sched_switch events")
    events.sort()
    # From the pool's first thread switch to its last: the harness's start-up and the
    # process's exit are not the pool's.
    ours = [i for i, e in enumerate(events) if e[4].startswith(prefix)]
    if not ours:
        sys.exit(f"no {prefix}* thread ran")
    events = events[ours[0] : ours[-1] + 1]
    names = {}
    idle_since = {}  # cpu -> time its idle task started
    idle_total = {}
    waiting = {}  # pid -> time it was preempted (runnable, not running)
    stacked = 0.0
    running = {}  # cpu -> (pid, since)
    ran = {}  # thread name -> seconds
    last_t = events[0][0]
    for t, cpu, ppid, pstate, ncomm, npid in events:
        if cpu in running:
            pid, since = running[cpu]
            if pid != 0:
                ran[names.get(pid, str(pid))] = ran.get(names.get(pid, str(pid)), 0.0) + t - since
        running[cpu] = (npid, t)
        # Credit the interval since the last event: pool threads waiting while a CPU idled.
        if idle_since and waiting:
            stacked += (t - last_t) * len(waiting)
        last_t = t
        if ppid == 0 and cpu in idle_since:
            idle_total[cpu] = idle_total.get(cpu, 0.0) + t - idle_since.pop(cpu)
        if ppid != 0 and pstate.startswith("R") and names.get(ppid, "").startswith(prefix):
            waiting[ppid] = t
        names[npid] = ncomm
        waiting.pop(npid, None)
        if npid == 0:
            idle_since[cpu] = t
    span = events[-1][0] - events[0][0]
    print(f"traced {span * 1e3:.1f} ms")
    for cpu in sorted(set(e[1] for e in events)):
        print(f"cpu {cpu}: idle {idle_total.get(cpu, 0.0) * 1e3:.1f} ms")
    print(f"stacked: {prefix}* threads runnable, waiting, while a CPU idled: {stacked * 1e3:.1f} ms")
    busiest = sorted(ran.items(), key=lambda kv: -kv[1])[:6]
    print("ran: " + ", ".join(f"{name} {secs * 1e3:.1f} ms" for name, secs in busiest))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "pmap")
