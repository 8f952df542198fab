"""Time `make run` end to end, from a fresh clone in a fresh virtual environment (a row in results/bench.jsonl).

`make run` is what a user runs; this is how long it takes them, install included. The clone is of this repository's
HEAD, so uncommitted changes are not timed. Every line the run prints is kept, timestamped, in the log; each stage's
seconds (install, generators: the VAE and the GAN side by side, samples, detector, CSV) run from the line where
make starts its command to the next.

    python scripts/time_make_run.py --plain-cpu    # caps the CPU at AVX2: no AMX, no AVX-512, float32 training
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from handgen import append_rows, cpu_facts, find_folder

# The first words of the commands `make run` starts (Makefile), each naming the stage it opens.
STAGES = {"-m handgen train-vqvae": "generators", "-m handgen zoo": "generators", "-m handgen train-gan": "generators",
          "-m handgen sample": "samples", "-m handgen train-detector": "detector", "-m handgen classify": "CSV"}
# What torch, oneDNN and MKL read to stay below a capability; the same caps `runtime.fast_bfloat16` honours.
PLAIN_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def stage_seconds(marks: list[tuple[float, str]], start: float, end: float) -> dict[str, float]:
    """Seconds per stage from (time, stage) marks: install until the first mark, each stage until the next."""
    seconds = {"install": (marks[0][0] if marks else end) - start}
    for (began, stage), (ended, _) in zip(marks, marks[1:] + [(end, "")]):
        seconds[stage] = seconds.get(stage, 0.0) + ended - began
    return {stage: round(value, 1) for stage, value in seconds.items()}


def stage_of(line: str) -> str | None:
    """The stage a line of make's output opens, if it is the echo of one of the commands in `STAGES`."""
    words = line.lstrip("{( ").split()  # a command may open a group of commands
    if not words or not Path(words[0]).name.startswith("python"):
        return None
    return next((name for command, name in STAGES.items() if command in line), None)


def output_lines(stream) -> Iterator[str]:
    """The non-empty lines of a byte stream as they come, progress bars split at carriage returns, the last one
    kept even without its newline."""
    pending = b""
    while chunk := os.read(stream.fileno(), 65536):
        *lines, pending = (pending + chunk).replace(b"\r", b"\n").split(b"\n")
        yield from filter(None, (raw.decode(errors="replace").rstrip() for raw in lines))
    if pending.strip():
        yield pending.decode(errors="replace").rstrip()


def run_logged(command: list[str], cwd: Path, env: dict, log: Path) -> tuple[int, list[tuple[float, str]]]:
    """Run `command`, writing each output line to `log` with its time; the exit code and the stages' start times."""
    marks = []
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process, \
            log.open("w") as out:
        for line in output_lines(process.stdout):
            now = time.time()
            out.write(f"{datetime.fromtimestamp(now, timezone.utc):%H:%M:%S} {line}\n")
            out.flush()
            if stage := stage_of(line):
                marks.append((now, stage))
        return process.wait(), marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain-cpu", action="store_true", help="cap the CPU at AVX2 (no AMX, no AVX-512)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its environment")
    parser.add_argument("--log", default="runs/make-run.log")
    parser.add_argument("--out", default="results/bench.jsonl")
    args = parser.parse_args()
    repository = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repository, capture_output=True, text=True,
                            check=True).stdout.strip()
    data = find_folder("real_hands").parent  # the clone looks for the data where this checkout found it
    work = Path(tempfile.mkdtemp(prefix="handgen-make-run-"))
    clone, venv = work / "handgen", work / "venv"
    subprocess.run(["git", "clone", "-q", str(repository), str(clone)], check=True)
    env = {**os.environ, "HANDGEN_DATA": str(data), **(PLAIN_CPU if args.plain_cpu else {})}
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    log = Path(args.log).resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    code, marks = run_logged(["make", "run", f"PYTHON={venv / 'bin' / 'python'}"], clone, env, log)
    end = time.time()
    row = {"step": "make run", "commit": commit, "returncode": code, "plain_cpu": args.plain_cpu,
           "threads": os.cpu_count(), **cpu_facts(), "seconds": stage_seconds(marks, start, end),
           "total_seconds": round(end - start, 1), "log": args.log}
    append_rows([row], args.out)
    print(row)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
