"""``judgeq exporter`` scraped by a real Prometheus server, and the drift query evaluated by Prometheus.

The story: an online run's verdicts are in the ledger; the exporter (a real
subprocess) serves their weighted mean per locale; Prometheus (Debian's
package, started here on a free port with a 1 s scrape interval and storage
of its own) scrapes it. Then the German slice's quality drops: new low
verdicts land in the ledger. Evaluated through Prometheus's HTTP API, the
classic query with short ranges,

    avg_over_time(app_eval_relevance[SHORT]) < 0.6 and avg_over_time(app_eval_relevance[LONG]) > 0.75

fires for locale="de" and not for locale="en", with the values the rows give
when computed here by hand.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.store import Ledger

from .metrics_rows import Row, make_run, weighted_mean, write_rows
from .processes import base_env, free_port, judgeq_cmd, wait_until

pytestmark = pytest.mark.timeout(240)

PROMETHEUS = shutil.which("prometheus")
MISSING = ("Debian's prometheus package is not installed: apt-get install prometheus (scripts/test installs it; "
           "README, 'Two commands')")

HIGH_EN = [Row(f"en{i}", "en", 0.9, weight=2.0) for i in range(10)]
# Weighted 0.976 (unweighted 0.9): the exporter must weigh by 1/p.
HIGH_DE = [Row(f"de{i}", "de", 1.0, weight=5.0) for i in range(4)] + [Row("de4", "de", 0.5, weight=1.0)]
DROP_DE = [Row(f"de-low{i}", "de", 0.0, weight=5.0) for i in range(4)]  # de's mean becomes 20.5 / 41 = 0.5


class Prometheus:
    """A prometheus process scraping one target every second, with its own storage; stopped by ``stop``."""

    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                          f"  - job_name: judgeq\n    static_configs:\n      - targets: ['{target}']\n")
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [PROMETHEUS or "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._ready, 60, lambda: f"prometheus to start:\n{self.log.read_text()[-2000:]}", interval=0.2)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def samples(self, selector: str) -> list[tuple[float, float]]:
        """The stored samples of one series over the last 10 minutes, oldest first."""
        found = self.query(f"{selector}[10m]")
        assert len(found) <= 1, found
        return [(float(t), float(v)) for t, v in found[0]["values"]] if found else []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def exporter_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    config = tmp_path / "judgeq.toml"
    config.write_text('[exporter]\nslices = ["metadata.locale"]\n')
    yield base_env(JUDGEQ_CONFIG=str(config))


def start_exporter(env: dict[str, str], ledger_url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    log = tmp / "exporter.log"
    proc = subprocess.Popen(judgeq_cmd() + ["exporter", "--port", str(port), "--window", "1h", "--refresh", "1s"],
                            env={**env, "JUDGEQ_LEDGER_URL": ledger_url}, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the exporter exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, lambda: f"the exporter to serve:\n{log.read_text()}", interval=0.2)
    return proc


@pytest.mark.parametrize("ledger_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_drift_query_fires_for_the_slice_that_dropped(ledger_url: str, exporter_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    assert PROMETHEUS is not None, MISSING
    ledger = Ledger(ledger_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", HIGH_EN + HIGH_DE)
    port = free_port()
    exporter = start_exporter(exporter_env, ledger_url, port, tmp_path)
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{port}")
    try:
        de, en = 'app_eval_relevance{locale="de",kind="online"}', 'app_eval_relevance{locale="en",kind="online"}'
        high_de, high_en = weighted_mean(HIGH_DE), weighted_mean(HIGH_EN)
        wait_until(lambda: len(prometheus.samples(de)) >= 8, 90, lambda: f"8 samples of {de}: "
                   f"{prometheus.samples(de)}")
        assert all(math.isclose(v, high_de) for _, v in prometheus.samples(de))
        assert math.isclose(high_de, 20.5 / 21) and not math.isclose(high_de, 0.9)

        write_rows(ledger, "online-1", DROP_DE)
        dropped = weighted_mean(HIGH_DE + DROP_DE)
        assert math.isclose(dropped, 0.5)

        def new_samples() -> list[tuple[float, float]]:
            return [(t, v) for t, v in prometheus.samples(de) if math.isclose(v, dropped)]

        wait_until(lambda: len(new_samples()) >= 3, 90, lambda: f"3 samples of {dropped} in {prometheus.samples(de)}")
        series = prometheus.samples(de)
        assert all(math.isclose(v, high_de) or math.isclose(v, dropped) for _, v in series), series
        first_new = new_samples()[0][0]
        at = new_samples()[2][0]  # evaluate when exactly three low samples exist
        old = [(t, v) for t, v in series if t < first_new]
        gap = first_new - old[-1][0]
        short_ms = int(((at - first_new) + gap / 2) * 1000)  # the three low samples only
        long_ms = int(((at - old[0][0]) + 0.5) * 1000)  # every sample so far
        long_avg = (len(old) * high_de + 3 * dropped) / (len(old) + 3)
        assert long_avg > 0.75  # the data are such that the long baseline is still good (len(old) >= 8)

        query = (f"avg_over_time(app_eval_relevance[{short_ms}ms]) < 0.6 and "
                 f"avg_over_time(app_eval_relevance[{long_ms}ms]) > 0.75")
        fired = prometheus.query(query, at=at)
        assert [r["metric"]["locale"] for r in fired] == ["de"], fired
        assert fired[0]["metric"] == {"locale": "de", "kind": "online", "job": "judgeq",
                                      "instance": f"127.0.0.1:{port}"}  # avg_over_time drops the name
        assert math.isclose(float(fired[0]["value"][1]), dropped)
        (baseline,) = prometheus.query(f"avg_over_time({de}[{long_ms}ms])", at=at)
        assert math.isclose(float(baseline["value"][1]), long_avg)
        (english,) = prometheus.query(f"avg_over_time({en}[{short_ms}ms])", at=at)
        assert math.isclose(float(english["value"][1]), high_en)  # en did not move: no alert for it

        # All traffic beside the slices: stored by Prometheus without the slice label, selected by locale="".
        (everything,) = prometheus.query('app_eval_relevance{kind="online",locale=""}', at=at)
        assert "locale" not in everything["metric"], everything
        assert math.isclose(float(everything["value"][1]), weighted_mean(HIGH_EN + HIGH_DE + DROP_DE))

        # The verdicts behind the means, as Prometheus scraped them.
        (rows,) = prometheus.query('judgeq_eval_window_verdicts{judge="relevance",kind="online"}')
        assert int(float(rows["value"][1])) == len(HIGH_EN + HIGH_DE + DROP_DE)
    finally:
        prometheus.stop()
        exporter.terminate()
        exporter.wait(timeout=30)
    assert exporter.returncode == 0  # SIGTERM stops it cleanly


PROMTOOL = shutil.which("promtool")
REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_prometheus_files_are_valid_and_hold_readmes_query() -> None:
    assert PROMTOOL is not None, MISSING
    for kind, name in (("config", "prometheus.yml"), ("rules", "judgeq-rules.yml")):
        done = subprocess.run([PROMTOOL or "promtool", "check", kind, str(REPO / "examples" / name)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    query = ("avg_over_time(app_eval_relevance[1h]) < 0.6 and avg_over_time(app_eval_relevance[7d]) > 0.75")
    assert f"```promql\n{query}\n```" in (REPO / "README.md").read_text()
    assert f"expr: {query}\n" in (REPO / "examples" / "judgeq-rules.yml").read_text()
    assert "exporter:9464" in (REPO / "examples" / "prometheus.yml").read_text()
