"""The benchmark runner on a fake registry: result files, the table, refusals, ``compare``, the CLIs.

Nothing here trains a model or times anything: the fake benchmarks return
fixed figures, which is all the runner needs to be checked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import runner
from benchmarks._clocks import steady_samples_per_second
from benchmarks._common import BenchmarkUnavailable, Samples, comparison
from benchmarks.runner import Benchmark, ThreadCountMismatch


def _row(skbig_threads: int = 2, peer_threads: int = 2) -> dict[str, Any]:
    return comparison(
        "predict samples/s",
        skbig=Samples([900.0, 1000.0, 1100.0], [skbig_threads] * 3),
        peer=Samples([1000.0, 1000.0, 1000.0], [peer_threads] * 3),
        peer_name="plain loop",
        compared="the same module and data",
        unit="/s",
        target=("ratio", ">=", 0.95),
    )


def fake_ok(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    return {"quick": quick, "data_dir": str(data_dir), "comparisons": [_row()]}


def fake_mismatch(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    return {"comparisons": [_row(skbig_threads=2, peer_threads=1)]}


def fake_missing(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    raise ModuleNotFoundError("No module named 'skbig_whisper'")


def fake_unavailable(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    raise BenchmarkUnavailable("accelerate is not installed")


def fake_broken(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
    raise ValueError("the data has no label column")


def fake_no_quick(data_dir: Path) -> dict[str, Any]:
    return {"comparisons": [_row()]}


REGISTRY = (
    Benchmark("ok", fake_ok, description="works"),
    Benchmark("mismatch", fake_mismatch),
    Benchmark("missing", fake_missing),
    Benchmark("unavailable", fake_unavailable),
    Benchmark("broken", fake_broken),
    Benchmark("no_quick", fake_no_quick),
    Benchmark("full_only", fake_ok, suites=("full",)),
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[runner.RunRecord]]:
    out = tmp_path_factory.mktemp("quick")
    return runner.run_suite("quick", data_dir=Path("/no/data"), out=out, registry=REGISTRY, command="make it")


def test_each_benchmark_gets_its_status(quick_run):
    _, records = quick_run
    assert {r.benchmark: r.status for r in records} == {
        "ok": "ok",
        "mismatch": "refused",
        "missing": "not available",
        "unavailable": "not available",
        "broken": "failed",
        "no_quick": "not available",
    }
    errors = {r.benchmark: r.error for r in records}
    assert "skbig_whisper" in errors["missing"]
    assert "no quick mode" in errors["no_quick"]
    assert errors["broken"] == "ValueError: the data has no label column"


def test_one_json_file_per_benchmark_with_machine_and_figures(quick_run):
    out, records = quick_run
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(r.benchmark for r in records)
    data = json.loads((out / "ok.json").read_text())
    assert data["suite"] == "quick" and data["status"] == "ok"
    machine = data["machine"]
    for key in ("cpu_model", "cpu_count", "torch_threads", "git_commit", "date"):
        assert key in machine
    assert set(machine["versions"]) >= {"torch", "skbig", "scikit-learn", "optuna"}
    assert data["figures"]["quick"] is True
    row = data["figures"]["comparisons"][0]
    assert row["skbig"] == 1000.0 and row["peer"] == 1000.0 and row["ratio"] == 1.0 and row["met"] is True
    assert "Traceback" in json.loads((out / "broken.json").read_text())["figures"]["traceback"]


def test_markdown_table_has_a_row_per_comparison_and_the_refusals(quick_run):
    out, _ = quick_run
    table = (out / "results.md").read_text()
    assert "Command: `make it`" in table
    assert "| benchmark | metric | skbig | peer | ratio | target | met? |" in table
    assert (
        "| ok | predict samples/s [1] | 1,000 /s | 1,000 /s (plain loop) | 1.000 | skbig/peer ≥ 0.95 | yes |"
        in table
    )
    assert "| mismatch | — | refused: benchmark 'mismatch'" in table
    assert "| broken | — | failed: ValueError: the data has no label column |" in table
    assert "1. ok, predict samples/s: the same module and data" in table


def test_full_suite_calls_benchmarks_without_a_quick_mode(tmp_path):
    _, records = runner.run_suite(
        "full", data_dir=tmp_path, out=tmp_path / "out", registry=REGISTRY, only=["no_quick", "full_only"]
    )
    assert [(r.benchmark, r.status) for r in records] == [("no_quick", "ok"), ("full_only", "ok")]


def test_check_threads_refuses_and_names_both_counts():
    with pytest.raises(ThreadCountMismatch, match=r"benchmark 'x', metric 'predict samples/s'.*\[2\].*\[1\]"):
        runner.check_threads("x", {"comparisons": [_row(skbig_threads=2, peer_threads=1)]})
    runner.check_threads("x", {"comparisons": [_row()]})


def test_check_threads_refuses_a_row_without_thread_counts():
    row = {**_row(), "peer_threads": []}
    with pytest.raises(ThreadCountMismatch, match="not recorded"):
        runner.check_threads("x", {"comparisons": [row]})


def test_a_call_that_changes_the_thread_count_is_refused(tmp_path):
    import torch

    from benchmarks._common import measure

    before = torch.get_num_threads()

    def changes_threads(data_dir: Path, *, quick: bool = False) -> dict[str, Any]:
        skbig = measure(lambda: torch.set_num_threads(1 if before > 1 else 2))
        torch.set_num_threads(before)
        peer = measure(lambda: None)
        return {"comparisons": [comparison("fit time", skbig=skbig, peer=peer, peer_name="p", compared="c")]}

    _, [record] = runner.run_suite(
        "quick", data_dir=tmp_path, out=tmp_path, registry=[Benchmark("threads", changes_threads)]
    )
    assert record.status == "refused"


def test_select_rejects_unknown_names_and_wrong_suites():
    with pytest.raises(ValueError, match=r"unknown benchmark 'okk' \(did you mean 'ok'\?\)"):
        runner.select("quick", ["okk"], REGISTRY)
    with pytest.raises(ValueError, match="not part of the 'quick' suite"):
        runner.select("quick", ["full_only"], REGISTRY)
    with pytest.raises(ValueError, match="suite must be one of"):
        runner.select("slow", None, REGISTRY)
    assert [b.name for b in runner.select("full", ["full_only", "ok"], REGISTRY)] == ["ok", "full_only"]


def test_the_real_registry_covers_the_issue():
    names = {b.name for b in runner.select("quick")}
    assert {
        "text_sms",
        "overhead",
        "predict_throughput",
        "minilm_throughput",
        "image_digits",
        "search",
    } <= names
    assert {"speech_fsdd", "transfer_text", "transfer_image", "transfer_speech"} <= names
    assert {b.name for b in runner.select("full")} == {b.name for b in runner.BENCHMARKS}


def _tweak_threads(folder: Path, threads: int) -> None:
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        data["machine"]["torch_threads"] = data["machine"]["torch_threads_after"] = threads
        for row in data["figures"].get("comparisons", ()):
            row["skbig_threads"] = row["peer_threads"] = [threads]
        path.write_text(json.dumps(data))


def test_compare_refuses_runs_with_different_thread_counts(quick_run, tmp_path):
    out, _ = quick_run
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, threads in ((a, 2), (b, 1)):
        shutil.copytree(out, folder)
        (folder / "mismatch.json").unlink()  # a refused run mixes counts by itself
        _tweak_threads(folder, threads)
    with pytest.raises(ThreadCountMismatch, match=r"refusing to compare .*\[2\].*\[1\]"):
        runner.compare_dirs(a, b)
    _tweak_threads(b, 2)
    table = runner.compare_dirs(a, b)
    assert "| ok | predict samples/s | 1,000 /s | 1,000 /s | 1.000 | 1.000 | 1.000 |" in table


def test_compare_needs_result_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no benchmark result files"):
        runner.compare_dirs(tmp_path, tmp_path)


def test_cli_compare_exits_1_with_the_reason(quick_run, tmp_path, capsys):
    from benchmarks.__main__ import main

    out, _ = quick_run
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, threads in ((a, 2), (b, 1)):
        shutil.copytree(out, folder)
        _tweak_threads(folder, threads)
    assert main(["compare", str(a), str(b)]) == 1
    assert "refusing to compare" in capsys.readouterr().err


def test_cli_rejects_unknown_benchmarks_with_exit_2(capsys):
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--suite", "quick", "--only", "predict_thruput"])
    assert exc.value.code == 2
    assert "did you mean 'predict_throughput'" in capsys.readouterr().err


def test_comparison_targets():
    skbig, peer = Samples([0.97], [1]), Samples([0.98], [1])
    assert comparison("a", skbig=skbig, peer=peer, peer_name="p", compared="c", target=("skbig", ">=", 0.96))[
        "met"
    ]
    gap = comparison(
        "a", skbig=skbig, peer=peer, peer_name="p", compared="c", target=("difference", ">=", -0.005)
    )
    assert gap["met"] is False
    with pytest.raises(ValueError, match="target must be"):
        comparison("a", skbig=skbig, peer=peer, peer_name="p", compared="c", target=("peer", ">", 1))


def test_steady_throughput_counts_only_the_last_epoch():
    times = [0.0, 1.0, 10.0, 12.0, 14.0]  # 5 steps where 2 epochs of 2 were expected
    with pytest.raises(RuntimeError, match="saw 5 optimisation steps, expected 4"):
        steady_samples_per_second(times, 2, 64)
    assert steady_samples_per_second([5.0, 9.0, 10.0, 13.0], 2, 64) == 64 / (13.0 - 9.0)


def test_gpu_script_parses_its_arguments_and_exits_cleanly_without_cuda():
    import torch

    from benchmarks import gpu

    args = gpu.build_parser().parse_args(
        ["--only", "minilm", "whisper_tiny_en", "--steps", "5", "--budget", "60"]
    )
    assert args.only == ["minilm", "whisper_tiny_en"] and args.steps == 5 and args.budget == 60.0
    with pytest.raises(SystemExit):
        gpu.build_parser().parse_args(["--only", "resnet"])
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the no-GPU exit cannot be checked here")
    with pytest.raises(SystemExit, match=r"needs a CUDA GPU|torch.cuda.is_available\(\) is False"):
        gpu.main(["--only", "minilm"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_script_runs_every_contender_in_a_cpu_smoke_run(tmp_path):
    """``--cpu-smoke`` runs the whole GPU benchmark on the CPU, so a GPU session is not spent on a crash."""
    from benchmarks import gpu
    from benchmarks._common import default_data_dir

    needed = [default_data_dir() / name for name in ("sst2", "hymenoptera", "fsdd")]
    if not all(path.is_dir() for path in needed):
        pytest.skip(f"the GPU benchmark reads the shared data, not found at {default_data_dir()}")
    out = tmp_path / "smoke.json"
    assert gpu.main(["--cpu-smoke", "--out", str(out)]) == 0
    records = {r["benchmark"]: r for r in json.loads(out.read_text())["records"]}
    assert set(records) == set(gpu.BACKENDS)
    for name, record in records.items():
        assert record["status"] == "ok", (name, record.get("error"))
        peers = {row["peer_name"] for row in record["figures"]["comparisons"]}
        expected = {"plain PyTorch bf16 loop, same module"}
        if name == "minilm":
            expected.add("transformers Trainer bf16")
        assert peers == expected
