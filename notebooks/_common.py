"""Helpers shared by the notebooks: find the `piracy-abm` program, run it over several seeds,
load its outputs with pandas, and summarise seeds as bands.

The notebooks never re-implement the model: every number they draw comes from the program's
output files (daily.csv, weekly.csv, monthly.csv, events.csv, summary.json,
counterfactual_monthly.csv) or from its `recovery` subcommand.

Environment variables:
  PIRACY_ABM            path of the program (the test suite sets it to the program of its build)
  PIRACY_NB_OUTPUT_DIR  where runs/ and figures/ go (default: this folder)
  PIRACY_NB_SEEDS       seeds to run: a count ("2") or a comma list ("1,2,3")
  PIRACY_NB_REUSE       1: reuse an existing run whose manifest.json has the same seed, overrides
                        and program version (to redraw figures without rerunning the model)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def find_program() -> str:
    """The program: $PIRACY_ABM, else ../build/release/piracy-abm (the README's build), else PATH."""
    env = os.environ.get("PIRACY_ABM")
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise FileNotFoundError(f"PIRACY_ABM={env}: not an executable file")
        return str(p)
    built = HERE.parent / "build" / "release" / "piracy-abm"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    on_path = shutil.which("piracy-abm")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "piracy-abm not found: build it (cmake --preset release && cmake --build --preset release), "
        "install it on PATH, or set PIRACY_ABM=/path/to/piracy-abm")


def program_version(program: str) -> str:
    return subprocess.run([program, "--version"], check=True, capture_output=True, text=True).stdout.strip()


def output_root() -> Path:
    root = Path(os.environ.get("PIRACY_NB_OUTPUT_DIR", HERE))
    root.mkdir(parents=True, exist_ok=True)
    return root


def figures_dir() -> Path:
    d = output_root() / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def savefig(fig, name: str) -> Path:
    """Saves a figure as figures/<name>.png (150 dpi) and returns the path."""
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def seeds(default: list[int]) -> list[int]:
    """The seeds to run: $PIRACY_NB_SEEDS (a count n = the first n defaults, or a comma list), else `default`."""
    env = os.environ.get("PIRACY_NB_SEEDS", "").strip()
    if not env:
        return list(default)
    if "," in env:
        return [int(s) for s in env.split(",") if s.strip()]
    n = int(env)
    if n < 1:
        raise ValueError(f"PIRACY_NB_SEEDS={env}: need at least one seed")
    return list(default[:n]) if n <= len(default) else list(default) + [1000 + i for i in range(n - len(default))]


def run_seeds(name: str, seed_list: list[int], extra_args: list[str] = (), program: str | None = None,
              workers: int | None = None) -> dict[int, Path]:
    """Runs `piracy-abm run -o runs/<name>/seed-<S> --seed S --quiet --force` for each seed.

    Seeds run in parallel processes (as many as there are cores, each with its share of the
    threads): the model's outputs do not depend on the thread count, and separate processes use
    two cores better than one process with two threads. Returns {seed: output directory}.
    """
    program = program or find_program()
    cores = os.cpu_count() or 1
    workers = max(1, min(len(seed_list), workers or cores))
    threads = max(1, cores // workers)
    base = output_root() / "runs" / name
    base.mkdir(parents=True, exist_ok=True)

    reuse = os.environ.get("PIRACY_NB_REUSE", "") not in ("", "0")
    version = program_version(program) if reuse else ""
    sets = [extra_args[i + 1] for i, a in enumerate(extra_args[:-1]) if a == "--set"]

    def reusable(out: Path, seed: int) -> bool:
        try:
            m = json.loads((out / "manifest.json").read_text())
        except (OSError, ValueError):
            return False
        same_program = f"{m.get('version')} ({m.get('git_commit')})" in version
        return (same_program and m.get("seed") == seed and m.get("overrides", []) == sets
                and (out / "summary.json").exists())

    def one(seed: int):
        out = base / f"seed-{seed}"
        if reuse and reusable(out, seed):
            return seed, out, None
        cmd = [program, "run", "-o", str(out), "--seed", str(seed), "--quiet", "--force",
               "--threads", str(threads), *extra_args]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}\nexit code {res.returncode}\n{res.stderr}")
        return seed, out, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, seed_list))
    for seed, out, dt in results:
        print(f"  seed {seed}: " + ("reused" if dt is None else f"{dt:5.1f} s") + f" -> {out}")
    print(f"{len(seed_list)} runs in {time.perf_counter() - t0:.1f} s ({workers} processes x {threads} threads)")
    return {seed: out for seed, out, _ in results}


class Run:
    """The outputs of one run, loaded with pandas (dates parsed)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.daily = pd.read_csv(self.path / "daily.csv", parse_dates=["date"], index_col="date")
        self.weekly = pd.read_csv(self.path / "weekly.csv", parse_dates=["week_start"], index_col="week_start")
        self.monthly = pd.read_csv(self.path / "monthly.csv", index_col="month")
        self.monthly.index = pd.PeriodIndex(self.monthly.index, freq="M")
        self.events = pd.read_csv(self.path / "events.csv", parse_dates=["date"])
        self.summary = json.loads((self.path / "summary.json").read_text())
        self.manifest = json.loads((self.path / "manifest.json").read_text())
        cf = self.path / "counterfactual_monthly.csv"
        self.counterfactual_monthly = None
        if cf.exists():
            self.counterfactual_monthly = pd.read_csv(cf, index_col="month")
            self.counterfactual_monthly.index = pd.PeriodIndex(self.counterfactual_monthly.index, freq="M")

    def recovery_options(self) -> dict[str, float]:
        """The `recovery:` block of the resolved config.yaml (the options summary.json's estimates used)."""
        text = (self.path / "config.yaml").read_text()
        block = re.search(r"^recovery:\n((?:[ \t]+.*\n?)+)", text, re.M)
        if not block:
            raise ValueError(f"{self.path / 'config.yaml'}: no recovery block")
        return {k: float(v) for k, v in re.findall(r"^\s+(\w+):\s*([-+0-9.eE]+)\s*$", block.group(1), re.M)}


def load_runs(dirs: dict[int, Path]) -> dict[int, Run]:
    return {seed: Run(d) for seed, d in dirs.items()}


def stack(runs: dict[int, Run], table: str, column: str) -> pd.DataFrame:
    """One column of a table (daily/weekly/monthly/counterfactual_monthly) over all seeds: index x seed."""
    return pd.DataFrame({seed: getattr(r, table)[column] for seed, r in runs.items()})


def band(frame: pd.DataFrame) -> pd.DataFrame:
    """Min, median and max over the seeds (columns) of `frame`."""
    return pd.DataFrame({"min": frame.min(axis=1), "median": frame.median(axis=1), "max": frame.max(axis=1)})


def plot_band(ax, frame: pd.DataFrame, label: str, color=None, x=None, **line_kw):
    """Draws the min-max band over seeds (shaded) and the median (line); returns the line."""
    b = band(frame)
    xs = x if x is not None else (b.index.to_timestamp(how="start") if isinstance(b.index, pd.PeriodIndex) else b.index)
    (line,) = ax.plot(xs, b["median"], color=color, label=f"{label} (median, min-max over {frame.shape[1]} seeds)",
                      **line_kw)
    ax.fill_between(xs, b["min"], b["max"], color=line.get_color(), alpha=0.25, linewidth=0)
    return line


def recovery(run: Run, event: str, column: str = "releases_scene", program: str | None = None) -> dict:
    """The program's own recovery estimators (`piracy-abm recovery`) on a daily series of a run, with the
    options of the run's config (the same estimates as summary.json's crackdowns, plus the fitted
    y0, y_inf, k and the trough day, which summary.json does not carry)."""
    program = program or find_program()
    o = run.recovery_options()
    cmd = [program, "recovery", str(run.path / "daily.csv"), "--event", event, "--column", column,
           "--pre-window", f"{o['pre_window_days']:g}", "--max-days", f"{o['max_days_after']:g}",
           "--smoothing", f"{int(o['smoothing_days'])}"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\nexit code {res.returncode}\n{res.stderr}")
    return json.loads(res.stdout)


def recovery_curve(fit: dict, max_days_after: float, step: float = 1.0):
    """Days after the event and y(t) = y_inf - (y_inf - y0) exp(-k (t - trough_day)) from the trough on."""
    t = np.arange(fit["trough_day"], max_days_after + step / 2, step)
    y = fit["y_inf"] - (fit["y_inf"] - fit["y0"]) * np.exp(-fit["k_per_day"] * (t - fit["trough_day"]))
    return t, y


def run_experiment(name: str, experiment_file: Path | str, sets: list[str] = (), program: str | None = None,
                   jobs: int | None = None) -> Path:
    """Runs `piracy-abm experiment FILE -o runs/<name> --force --quiet --jobs J [--set ...]` and returns
    the experiment directory (runs.csv, effects.csv, means.csv, series.csv, manifest.json, ...).

    The program runs the replicates in parallel itself (`--jobs`, default: the number of cores) and
    its tables do not depend on the number of jobs. With PIRACY_NB_REUSE=1 an existing directory
    whose manifest.json has the same overrides and program version is reused.
    """
    program = program or find_program()
    out = output_root() / "runs" / name
    jobs = jobs or (os.cpu_count() or 1)
    sets = list(sets)
    if os.environ.get("PIRACY_NB_REUSE", "") not in ("", "0"):
        try:
            m = json.loads((out / "manifest.json").read_text())
            if (f"{m.get('version')} ({m.get('git_commit')})" in program_version(program)
                    and m.get("overrides", []) == sets and (out / "runs.csv").exists()):
                print(f"reused {out} ({m['runs']} runs)")
                return out
        except (OSError, ValueError, KeyError):
            pass
    cmd = [program, "experiment", str(experiment_file), "-o", str(out), "--force", "--quiet", "--jobs", str(jobs)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\nexit code {res.returncode}\n{res.stderr}")
    m = json.loads((out / "manifest.json").read_text())
    print(f"{m['runs']} runs in {time.perf_counter() - t0:.1f} s ({jobs} jobs) -> {out}")
    return out


def repo_root() -> Path:
    """The repository (the notebooks' parent folder): where configs/ is."""
    return HERE.parent
