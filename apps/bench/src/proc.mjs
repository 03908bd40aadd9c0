// /proc readers: resident memory and CPU time of a process (Linux only).
import { readFileSync } from "node:fs";

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64

/** { rss, hwm } in bytes from /proc/PID/status (VmRSS, VmHWM), or null if the process is gone. */
export function memoryOf(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return null;
  }
  const kb = (key) => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) * 1024 : null;
  };
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** User + system CPU time of a process in milliseconds (/proc/PID/stat utime + stime). */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ", field 3 (state) is index 0; utime is field 14 -> index 11, stime 15 -> 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Busy CPU time of the whole machine in milliseconds, all cores (/proc/stat "cpu" line). */
export function systemBusyMs() {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
    return (busy * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Samples VmRSS every `intervalMs`; `stop()` returns { peakRss (sampled max), hwm (kernel peak) }. */
export function startSampler(pid, intervalMs = 50) {
  let peakRss = 0;
  let hwm = 0;
  let samples = 0;
  const sample = () => {
    const m = memoryOf(pid);
    if (!m) return;
    samples++;
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.hwm > hwm) hwm = m.hwm;
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      sample();
      clearInterval(timer);
      return { peakRss, hwm, samples };
    },
  };
}

/** Soft and hard limit on open files of this process. */
export function openFilesLimit() {
  try {
    const text = readFileSync("/proc/self/limits", "latin1");
    const m = text.match(/^Max open files\s+(\S+)\s+(\S+)/m);
    const num = (s) => (s === "unlimited" ? Number.POSITIVE_INFINITY : Number(s));
    return m ? { soft: num(m[1]), hard: num(m[2]) } : null;
  } catch {
    return null;
  }
}
