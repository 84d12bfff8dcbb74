"""Cold and reloaded dashboard loads in headless Chromium over 1M (and 10M) stored events.

    .venv/bin/python bench/bench_dashboard.py [--events 1000000 10000000] [--runs 5] [--reloads 3]

Data: bench/bench_api.py's warehouse-shaped Parquet (generated once under --dir), published as a
real warehouse (a DuckLake, rows copied into it) in a temporary data dir. Each run starts a new
API process (journey.server.create_api_app on uvicorn: API + dashboard), waits only for /healthz
(which loads no snapshot), then opens the dashboard in a fresh browser context: the COLD load pays
for the snapshot load and the cache warm-up. Then --reloads page reloads (warm server). A load
ends when every panel shows numbers: KPI tiles, journey map, funnel, transitions, channel mix and
attribution (checked on every DOM change, timed from navigation start by the page's own clock).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a script, not an installed package

from bench.bench_api import TABLES, generate
from bench.common import REPO, free_port

TOKEN = "bench-dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Records performance.now() (ms since navigation start) when every panel first shows a number.
READY_PROBE = """
(() => {
  window.__readyAt = null;
  const num = (sel) => {
    const e = document.querySelector(sel);
    return !!e && /\\d/.test(e.textContent);
  };
  const ready = () => document.body && document.body.dataset.state === "ready"
    && num('#kpis [data-kpi="customers"] .tile-value') && num('#board [data-field="customers"]')
    && num('#funnel [data-field="customers"]') && num('#transitions [data-value]')
    && num('#mix [data-value]') && num('#attribution [data-value]');
  new MutationObserver(() => {
    if (window.__readyAt === null && ready()) window.__readyAt = performance.now();
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""
API_TIMES = """() => performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/"))
  .map((e) => [new URL(e.name).pathname, e.responseEnd - e.startTime])"""


def publish(root: Path, data_dir: Path) -> None:
    """Make the generated tables a committed DuckLake snapshot under data_dir/warehouse."""
    from bench.bench_warehouse import publish_lake

    row = duckdb.sql(f"SELECT max(timestamp) FROM read_parquet('{root / 'events.parquet'}')")
    watermark = row.fetchone()[0]  # type: ignore[index]
    publish_lake(data_dir, {t: f"SELECT * FROM read_parquet('{root / t}.parquet')"
                            for t in TABLES}, watermark)


def serve(port: int, data_dir: Path) -> None:
    """Child: API + dashboard on uvicorn, as `journey api` serves them."""
    import uvicorn
    from pydantic import SecretStr

    from api.settings import ApiSettings
    from journey.server import create_api_app

    settings = ApiSettings(data_dir=data_dir, api_tokens=[SecretStr(TOKEN)])
    uvicorn.run(create_api_app(settings), host="127.0.0.1", port=port, log_level="warning")


def start_api(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """A fresh API process; returns it, its base URL and seconds until /healthz answered."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(data_dir)],
                            cwd=REPO, env=env)
    base = f"http://127.0.0.1:{port}"
    while proc.poll() is None and time.perf_counter() - began < 120:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base, time.perf_counter() - began
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the API process did not start")


def loaded(page: Page, timeout_s: float) -> tuple[float, list[tuple[str, float]]]:
    """Wait for every panel to show numbers: (ms from navigation start, API request times)."""
    # Interval polling: requestAnimationFrame (the default) may not fire in headless mode.
    page.wait_for_function("window.__readyAt !== null", polling=100, timeout=timeout_s * 1000)
    at: float = page.evaluate("window.__readyAt")
    return at, [(str(p), float(t)) for p, t in page.evaluate(API_TIMES)]


@dataclass(frozen=True)
class Run:
    """One API process: seconds to /healthz, the cold load and the reloads (ms), API call times."""

    start_s: float
    cold: float
    warm: list[float]
    calls: list[tuple[str, float]]


def one_run(browser: Browser, data_dir: Path, reloads: int, timeout_s: float) -> Run:
    """Start the API, load the dashboard cold in a fresh context, reload it, stop the API."""
    proc, base, started_s = start_api(data_dir)
    try:
        # The page's CSP forbids eval, which playwright's waits and evaluations use.
        context = browser.new_context(bypass_csp=True)
        context.add_init_script(READY_PROBE)
        page = context.new_page()
        page.goto(f"{base}/#token={TOKEN}")
        cold, calls = loaded(page, timeout_s)
        warm = []
        for _ in range(reloads):
            page.reload()
            warm.append(loaded(page, timeout_s)[0])
        context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return Run(started_s, cold, warm, calls)


def p50_p95(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:8.0f} {values[0]:8.0f}"
    q = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):8.0f} {q[18]:8.0f}"


def main() -> None:
    """Generate (once), publish, then time cold and reloaded dashboard loads per size."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--runs", type=int, default=5, help="API process starts per size")
    parser.add_argument("--reloads", type=int, default=3, help="reloads after each cold load")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per page load")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/journey-bench"))
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    lines = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for n in args.events:
            root = args.dir / f"{n}"
            generate(root, n)
            with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
                publish(root.resolve(), Path(tmp))
                runs: list[Run] = []
                for i in range(args.runs):
                    runs.append(one_run(browser, Path(tmp), args.reloads, args.timeout))
                    print(f"{n:,} events, run {i + 1}: {runs[-1]}", flush=True)
            cold = [r.cold for r in runs]
            warm = [w for r in runs for w in r.warm]
            slow: dict[str, list[float]] = {}
            for r in runs:
                for path, ms in r.calls:
                    slow.setdefault(path, []).append(ms)
            worst = max(slow, key=lambda p: statistics.median(slow[p]))
            start = statistics.median(r.start_s for r in runs)
            lines.append(f"{n:>11,} {p50_p95(cold)} {p50_p95(warm)} {len(cold):>3}/{len(warm):<3} "
                         f"{start:6.1f} s  {worst} {statistics.median(slow[worst]):.0f} ms")
        browser.close()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (browser, API and any "
          "other work share them); ms from navigation start to every panel showing numbers")
    print(f"{'events':>11} {'cold p50':>8} {'cold p95':>8} {'rld p50':>8} {'rld p95':>8} n c/r "
          "API up    slowest API call in cold loads (median)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
