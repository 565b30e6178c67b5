"""The performance run's pure parts: percentiles, medians, tables, targets, arguments, and the
reading of a profile. Nothing here starts a server or times anything."""

from __future__ import annotations

import math

import pytest

from bench.perf_config import ITEMS, parse_args
from bench.perf_orders import Placed, Wave, order_body
from bench.perf_speedscope import count_samples, package_of
from bench.perf_stats import latency_metrics, median_metrics, percentile, rate, ratio
from bench.perf_table import Table, Target, number, render, summary_table
from bench.perf_watch import Arrivals


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 30.0
    assert percentile(values, 100) == 50.0
    # Rank 0.99 * 4 = 3.96: 96 % of the way from 40 to 50.
    assert percentile(values, 99) == pytest.approx(49.6)
    assert percentile(values, 25) == pytest.approx(20.0)


def test_percentile_ignores_input_order_and_handles_one_value() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_missing_not_zero() -> None:
    assert math.isnan(percentile([], 50))


def test_percentile_refuses_a_bad_rank() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_metrics_scale_seconds_to_milliseconds() -> None:
    m = latency_metrics("post", [0.010, 0.020, 0.030])
    assert m["post_p50"] == pytest.approx(20.0)
    assert m["post_max"] == pytest.approx(30.0)
    assert m["post_count"] == 3.0
    assert set(m) == {"post_p50", "post_p95", "post_p99", "post_max", "post_count"}


def test_rate_and_ratio_are_missing_when_undefined() -> None:
    assert rate(10, 4.0) == 2.5
    assert math.isnan(rate(10, 0.0))
    assert ratio(1.0, 4.0) == 0.25
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(float("nan"), 2.0))


def test_median_metrics_per_key_skipping_failed_runs() -> None:
    runs = [
        {"a": 1.0, "b": 10.0},
        {"a": 3.0, "b": float("nan")},
        {"a": 2.0, "b": 30.0},
    ]
    m = median_metrics(runs)
    assert m["a"] == 2.0
    # The NaN run is left out: the median of 10 and 30.
    assert m["b"] == 20.0
    assert math.isnan(median_metrics([{"c": float("nan")}])["c"])


def test_number_formats_thousands_units_and_missing() -> None:
    assert number(1234.5, 1, "ms") == "1,234.5 ms"
    assert number(3.0, 0) == "3"
    assert number(float("nan"), 2, "s") == "-"


def test_render_aligns_columns_and_numbers_right() -> None:
    table = Table("T", ["name", "value"], [["short", "5"], ["a longer name", "1,234.5"]], "end")
    lines = render(table).splitlines()
    assert lines[0] == "T"
    assert lines[1].startswith("name          ")
    assert lines[2] == "-------------  -------"
    assert lines[3] == "short                5"
    assert lines[4] == "a longer name  1,234.5"
    assert lines[5] == "end"


def test_render_keeps_the_first_column_left_even_when_it_starts_with_a_digit() -> None:
    table = Table("T", ["orders on", "n"], [["1 SKU", "10"], ["1000 SKUs", "1000"]])
    assert render(table).splitlines()[3] == "1 SKU        10"


@pytest.mark.parametrize(
    ("value", "bound", "sense", "met"),
    [
        (40.0, 50.0, "le", True),
        (50.0, 50.0, "le", True),
        (51.0, 50.0, "le", False),
        (0.4, 0.5, "ge", False),
        (0.5, 0.5, "ge", True),
        (100.0, 100.0, "eq", True),
        (99.0, 100.0, "eq", False),
        (float("nan"), 1.0, "le", None),
    ],
)
def test_target_met(value: float, bound: float, sense: str, met: bool | None) -> None:
    assert Target("m", value, bound, sense=sense).met is met  # type: ignore[arg-type]


def test_summary_lists_targets_then_measures_without_one() -> None:
    t = summary_table(
        [Target("p99 POST", 61.0, 50.0, "ms"), Target("ratio", 0.7, 0.5, sense="ge", digits=2)],
        [["orders/s", "12.0"]],
    )
    assert t.rows[0] == ["p99 POST", "61.0 ms", "≤ 50.0 ms", "NO"]
    assert t.rows[1] == ["ratio", "0.70", "≥ 0.50", "yes"]
    assert t.rows[2] == ["orders/s", "12.0", "-", "-"]
    assert Target("x", float("nan"), 1.0).as_json()["value"] is None


def test_defaults_measure_everything_at_the_issue_sizes() -> None:
    cfg = parse_args([])
    assert cfg.only == ITEMS
    assert (cfg.orders, cfg.open_orders, cfg.hot_orders, cfg.hot_units) == (1000, 10_000, 1000, 100)
    assert (cfg.latency_rate, cfg.latency_seconds, cfg.search_orders) == (10.0, 60.0, 1_000_000)
    assert cfg.out is None and cfg.json_path is None


def test_only_accepts_either_spelling_and_keeps_run_order() -> None:
    cfg = parse_args(["--only", "open_orders,lifecycle", "--orders", "20", "--repeat", "3"])
    assert cfg.only == ("lifecycle", "open-orders")
    assert (cfg.orders, cfg.repeat) == (20, 3)


def test_profile_brings_the_lifecycle_run_along() -> None:
    cfg = parse_args(["--only", "profile"])
    assert cfg.wants("lifecycle")
    assert cfg.wants("profile")
    assert not cfg.wants("latency")


@pytest.mark.parametrize(
    "argv",
    [
        ["--only", "everything"],
        ["--only", ","],
        ["--orders", "0"],
        ["--repeat", "-1"],
        ["--hot-orders", "10", "--hot-units", "11"],
        ["--timers", "carrier_step_seconds"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_timers_override_the_stack_settings_and_are_recorded() -> None:
    cfg = parse_args(["--timers", "carrier_step_seconds=0.5, outbox_poll_seconds=0.1"])
    s = cfg.stack_settings()
    assert s["carrier_step_seconds"] == "0.5"
    assert s["outbox_poll_seconds"] == "0.1"
    assert s["after_sales_window_seconds"] == "0"
    assert cfg.describe()["stack_settings"] == s
    assert "carrier_step_seconds=0.5" in cfg.header()
    # A fresh config is not changed by another's overrides.
    assert parse_args([]).stack_settings()["carrier_step_seconds"] == "0"


def test_order_body_is_a_card_order_of_one_unit() -> None:
    body = order_body(205, "SKU-X", postal_code="11111")
    assert body["lines"] == [{"sku": "SKU-X", "quantity": 1}]
    assert body["payment"] == {"method": "card", "token": "tok_ok"}
    assert body["ship_to"]["postal_code"] == "11111"
    assert body["customer"]["id"] == "C-PERF-005"


def test_wave_times_each_order_from_its_own_post() -> None:
    placed = [
        Placed(0, sent_at=100.0, seconds=0.1, status=201, order_id="A"),
        Placed(1, sent_at=101.0, seconds=0.2, status=201, order_id="B"),
        Placed(2, sent_at=101.5, seconds=0.3, status=500, error="boom"),
    ]
    arrivals = Arrivals(at={"A": 103.0, "B": 102.0}, status={"A": "COMPLETED", "B": "COMPLETED"})
    wave = Wave(placed, arrivals, began=100.0)
    assert wave.ids == ["A", "B"]
    assert sorted(wave.latencies()) == [1.0, 3.0]
    assert wave.seconds == 3.0
    assert wave.post_seconds() == [0.1, 0.2]
    assert "1 order(s) not accepted" in wave.stragglers()


def test_wave_names_where_the_stragglers_are() -> None:
    placed = [Placed(i, 0.0, 0.1, 201, order_id=f"O{i}") for i in range(3)]
    arrivals = Arrivals(at={"O0": 1.0}, status={"O0": "COMPLETED", "O1": "PACKED"})
    text = Wave(placed, arrivals, 0.0).stragglers()
    assert text.startswith("2 did not arrive")
    assert "PACKED 1" in text and "not in the read model 1" in text


def test_package_of_names_libraries_and_our_code() -> None:
    site = "/x/.venv/lib/python3.11/site-packages"
    assert package_of(f"{site}/temporalio/worker/_workflow.py") == "temporalio"
    assert package_of(f"{site}/sqlalchemy/orm/session.py") == "sqlalchemy"
    assert package_of(f"{site}/anyio/_core.py") == "anyio"
    assert package_of("/src/app/workflows/order.py") == "ours: workflows/"
    assert package_of("<frozen importlib._bootstrap>") == "python stdlib / other"


def test_count_samples_counts_top_frames_and_skips_the_event_loop() -> None:
    frames = [
        {"name": "BaseEventLoop._run_once", "file": "/usr/lib/python3.11/asyncio/base_events.py"},
        {"name": "Handle._run", "file": "/usr/lib/python3.11/asyncio/events.py"},
        {"name": "OrderWorkflow.run", "file": "/src/app/workflows/order.py"},
        {"name": "Session.execute", "file": "/v/site-packages/sqlalchemy/orm/session.py"},
    ]
    doc = {
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "samples": [[0, 1, 2, 3], [0, 1, 2], [0], []],
                "weights": [0.01, 0.01, 0.02, 0.01],
            }
        ],
    }
    c = count_samples(doc)
    assert c.total == pytest.approx(0.04)
    assert c.by_package["sqlalchemy"] == pytest.approx(0.01)
    assert c.by_package["ours: workflows/"] == pytest.approx(0.01)
    assert c.by_package["asyncio"] == pytest.approx(0.02)
    # Inclusive counts start below the loop's dispatch: the loop itself is never "hot".
    assert c.inclusive["OrderWorkflow.run"] == pytest.approx(0.02)
    assert "BaseEventLoop._run_once" not in c.inclusive
    assert "Handle._run" not in c.inclusive
