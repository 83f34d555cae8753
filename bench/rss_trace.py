"""The RSS of a running process over time, as CSV (issue 17).

    python bench/rss_trace.py PID OUT.csv [--log TRAINING_LOG] [--every 10]
    python bench/rss_trace.py --summary TRACE.csv...

Every ``--every`` seconds until the process ends, one row: seconds since the
trace began, the process's CPU seconds so far, its resident set size (MB) and,
with ``--log``, the last training step that spaCy's log table shows (its
second column; the table has a row per evaluation). The CPU seconds are the
clock to read growth against: on one thread they advance with the updates,
whatever else shares the machine. ``bench/train_peak.py`` runs this beside
every training it measures; on its own it attaches to a training already
running. Linux only (it reads ``/proc``).

``--summary`` reads traces back: the peak, and the growth of the RSS from
update ``--after`` (200) on in % per 1,000 updates (``bench/train_memory.py``'s
least-squares measure, the issue's target), where a reading's update is
interpolated in CPU seconds between the logged steps. The CPU configs' batches
grow from 100 to 1,000 words over the first 2,303 updates (``compounding.v1``),
so only from there on does a training hold the batch size constant as
``train_memory.py`` does.
"""
import argparse
import csv
import os
import re
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROW = re.compile(r"^\s*\d+\s+(\d+)\s")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELDS = ["elapsed_s", "cpu_s", "rss_mb", "step"]


def sample(pid: int) -> Optional[Tuple[float, float]]:
    """(CPU seconds, RSS in MB) of ``pid``, or None once it has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; utime, stime are fields 14, 15
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    if rss is None:  # a zombie has no memory left to report
        return None
    return cpu, rss / 1024


def last_step(log: Optional[Path]) -> Optional[int]:
    """The step of the last row of spaCy's training table in ``log``, if any."""
    if log is None or not log.exists():
        return None
    step = None
    for line in log.read_text(errors="replace").splitlines():
        match = ROW.match(ANSI.sub("", line))
        if match:
            step = int(match.group(1))
    return step


def trace(pid: int, out: Path, log: Optional[Path] = None, every: float = 10.0) -> int:
    """Append a row to ``out`` every ``every`` seconds while ``pid`` runs; the number of rows."""
    start = time.perf_counter()
    rows = 0
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        while True:
            now = sample(pid)
            if now is None:
                return rows
            step = last_step(log)
            writer.writerow([f"{time.perf_counter() - start:.0f}", f"{now[0]:.0f}", f"{now[1]:.0f}",
                             "" if step is None else step])
            handle.flush()
            rows += 1
            time.sleep(every)


def read(path: Path) -> List[Tuple[float, float, Optional[int]]]:
    """(CPU seconds, RSS MB, logged step or None) per reading of a trace."""
    with path.open(newline="") as handle:
        return [(float(r["cpu_s"]), float(r["rss_mb"]), int(r["step"]) if r["step"] else None) for r in csv.DictReader(handle)]


def updates(readings: List[Tuple[float, float, Optional[int]]]) -> List[float]:
    """Each reading's update, interpolated in CPU seconds between the first readings of each logged
    step (before the first and after the last, at the nearest stretch's rate)."""
    anchors: List[Tuple[float, int]] = []
    for cpu, _, step in readings:
        if step is not None and (not anchors or step > anchors[-1][1]):
            anchors.append((cpu, step))
    if len(anchors) < 2:
        return [float("nan")] * len(readings)
    out = []
    for cpu, _, _ in readings:
        k = next((i for i in range(1, len(anchors) - 1) if cpu <= anchors[i][0]), len(anchors) - 1)
        (c0, s0), (c1, s1) = anchors[k - 1], anchors[k]
        out.append(s0 + (cpu - c0) * (s1 - s0) / (c1 - c0))
    return out


def summary(path: Path, after: int = 200) -> Dict[str, float]:
    """Peak RSS, RSS at update ``after`` and at the end, growth from ``after`` on (%/1,000 updates)."""
    from train_memory import growth

    readings = read(path)
    steps = updates(readings)
    rows = [[step, rss] for step, (_, rss, _) in zip(steps, readings)]
    later = [rss for step, rss in rows if step >= after]
    return {
        "peak_rss_mb": max(rss for _, rss, _ in readings),
        "rss_at_after_mb": later[0] if later else float("nan"),
        "rss_at_end_mb": readings[-1][1],
        "updates": steps[-1],
        "growth_pct_per_1k": growth(rows, after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", nargs="+", type=Path, help="print the summary of these traces and exit")
    parser.add_argument("--after", type=int, default=200, help="--summary: growth from this update on")
    parser.add_argument("pid", type=int, nargs="?")
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    if args.summary:
        for path in args.summary:
            print(path, {k: round(v, 1) for k, v in summary(path, args.after).items()})
        return
    if args.pid is None or args.out is None:
        parser.error("PID and OUT are required")
    print(f"{trace(args.pid, args.out, args.log, args.every)} rows in {args.out}")


if __name__ == "__main__":
    main()
