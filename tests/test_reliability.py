"""Reliability (issue 17): each probe of the hostile-user report, turned into a test on real data.

Locks per output folder, strict JSON, non-finite audio, checksums on load and resume, truncated
caches and labels, validation of every configuration value, confined ``LATEST``, memory
estimate before allocating, clean-up of interrupted writes, exit status after signals.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from darkgan.errors import CheckpointError, DarkGANError, DataError
from darkgan.models.checkpoint import load_generator, load_training_state, read_checkpoint_config
from darkgan.training.loop import resolve_config, train
from darkgan.utils.io import folder_lock, lock_path, write_json

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
ONE_STEP = ["train.iterations=[1,0,0,0,0,0]"]


def _cli(capsys, *args):
    """``darkgan ARGS`` in-process: (status, stdout, stderr)."""
    from darkgan.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert err.startswith("darkgan: error: ") and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


def _flip_last_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # inside the tensor data, past the safetensors header
    path.write_bytes(bytes(data))


def _truncate_half(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


@pytest.fixture(scope="module")
def run(prepared_dataset, tmp_path_factory) -> Path:
    """A real one-step ``tiny`` training run (treat as read-only; copy it to modify)."""
    out = tmp_path_factory.mktemp("rel") / "run"
    train(prepared_dataset, out, preset="tiny", overrides=ONE_STEP, progress=False, threads=1)
    return out


# ------------------------------------------------------------------------- locks and signals

def test_folder_lock_is_per_process_reentrant_and_dies_with_its_holder(prepared_dataset, tmp_path):
    target = tmp_path / "ds" / "cache"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from darkgan.utils.io import folder_lock; "
         "cm = folder_lock(sys.argv[1]); cm.__enter__(); print('locked', flush=True); time.sleep(120)", str(target)],
        stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DarkGANError, match="another darkgan job is writing into this folder"):
            with folder_lock(target):
                pass
        from darkgan.data.prepare import prepare

        shutil.copytree(prepared_dataset, tmp_path / "ds", ignore=shutil.ignore_patterns("cache"), dirs_exist_ok=True)
        with pytest.raises(DarkGANError, match=f"{target}: another darkgan job"):
            prepare(tmp_path / "ds", progress=False)
        assert not target.exists()  # nothing written by the refused job
    finally:
        holder.kill()  # kill -9: the OS drops the lock with the process
        holder.wait()
    with folder_lock(target), folder_lock(target):  # free again; re-entrant in one process
        assert lock_path(target).is_file()


def test_second_train_into_a_busy_run_folder_fails_and_sigterm_exits_143(prepared_dataset, tmp_path, capsys):
    """Two `darkgan train` into one --out: the second fails at once naming the folder (it used to
    train too, and the runs replaced each other's checkpoints). SIGTERM stops the first with a
    checkpoint and exit status 143 (it was 130, the status of Ctrl-C)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "darkgan", "train", "--data", str(prepared_dataset), "--out", str(out),
           "--preset", "tiny", "--set", "train.iterations=[100000,0,0,0,0,0]", "--set", "train.checkpoint_every=3",
           "--threads", "1", "--no-progress"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 900  # generous: on a loaded 2-core machine start-up alone takes minutes
        while not (out / "LATEST").is_file() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        if not (out / "LATEST").is_file():
            first.kill()
            pytest.fail(f"no checkpoint from the first run: {first.communicate()[1][-2000:]}")
        with pytest.raises(DarkGANError, match="another darkgan job is writing into this folder"):
            train(prepared_dataset, out, preset="tiny", overrides=ONE_STEP, progress=False, threads=1)
        with pytest.raises(DarkGANError, match="another darkgan job"):
            train(prepared_dataset, out, resume=True, progress=False, threads=1)
        rc, _, err = _cli(capsys, *cmd[3:])
        _one_line_error(rc, err, str(out), "another darkgan job")
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, stderr
    step = load_training_state(out)["train_state"]["step"]
    assert "signal at step" in stdout and f"checkpoint-{step:08d}" in stdout
    res = train(prepared_dataset, out, resume=True, stop_at_step=step + 1, progress=False, threads=1)
    assert res.step == step + 1


def test_interrupted_checkpoint_writes_are_cleaned_up_on_resume(run, prepared_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    tmp_dir = out / ".checkpoint-00000002.k3x9_a.tmp"  # what save_checkpoint leaves when killed
    tmp_dir.mkdir()
    (tmp_dir / "generator.safetensors").write_bytes(b"partial")
    stray = out / ".LATEST.q1w2e3.tmp"  # what atomic_write leaves when killed
    stray.write_text("checkpoint-0000")
    kept_aside = out / ".checkpoint-00000001.old-4242"  # a replaced checkpoint whose new copy never came
    os.replace(out / "checkpoint-00000001", kept_aside)
    res = train(prepared_dataset, out, resume=True, progress=False, threads=1,
                overrides=["train.iterations=[2,0,0,0,0,0]"])
    assert res.finished and res.step == 2
    assert not tmp_dir.exists() and not stray.exists() and not kept_aside.exists()
    assert "removed 2 unfinished checkpoint write(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_distill_cleans_only_its_own_leftovers_under_its_lock(run, tmp_path):
    """A killed `darkgan distill` leaves `.student.<random>.tmp` beside its --out (save_checkpoint
    writes the whole folder there first); the next distill into that --out removes it, and
    nothing of other folders."""
    from darkgan.compression.distill import distill

    mine, aside = tmp_path / ".student.k2j4.tmp", tmp_path / ".student.old-77"
    other = tmp_path / ".student2.k2j4.tmp"
    for d in (mine, aside, other):
        d.mkdir()
        (d / "generator.safetensors").write_bytes(b"partial")
    with pytest.raises(CheckpointError, match="trained only up to scale 0"):
        distill(run, tmp_path / "student", progress=False)  # a one-step run: refused after the clean-up
    assert not mine.exists() and not aside.exists() and other.exists()
    assert not (tmp_path / "student").exists()


# ------------------------------------------------------------------------ integrity of files

def test_a_flipped_bit_in_the_generator_is_a_checkpoint_error_at_load(run, tmp_path, capsys):
    ck = tmp_path / "ck"
    shutil.copytree(read_checkpoint_config(run).path, ck)
    load_generator(ck)
    _flip_last_bit(ck / "generator.safetensors")
    with pytest.raises(CheckpointError, match="generator.safetensors: checksum mismatch"):
        load_generator(ck)
    rc, _, err = _cli(capsys, "export-generator", ck, "--out", tmp_path / "exp")
    _one_line_error(rc, err, "checksum mismatch")
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("name", ["critic.safetensors", "generator.safetensors", "optim_d.pt"])
def test_a_flipped_bit_in_any_training_file_stops_resume(run, prepared_dataset, tmp_path, name):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    _flip_last_bit(read_checkpoint_config(out).path / name)
    with pytest.raises(CheckpointError, match=f"{name}: checksum mismatch"):
        train(prepared_dataset, out, resume=True, progress=False, threads=1)
    assert load_training_state(run)["train_state"]["step"] == 1  # the original still loads


def test_truncated_cache_is_rebuilt_not_called_complete(prepared_dataset, tmp_path, capsys):
    from darkgan.data.cache import NoteCache
    from darkgan.data.prepare import prepare

    ds = tmp_path / "ds"
    shutil.copytree(prepared_dataset, ds, ignore=shutil.ignore_patterns("labels"))
    _truncate_half(ds / "cache" / "magif.npy")
    with pytest.raises(DataError, match="corrupt or truncated cache"):
        NoteCache(ds)
    prepare(ds, progress=False)
    assert "rebuilding the cache" in capsys.readouterr().out
    want = np.load(prepared_dataset / "cache" / "magif.npy")
    np.testing.assert_array_equal(np.load(ds / "cache" / "magif.npy"), want)


def test_truncated_labels_are_a_data_error_and_get_relabelled(prepared_dataset, tmp_path, capsys):
    from darkgan.teacher.labels import label_dataset, load_labels

    ds = tmp_path / "ds"
    shutil.copytree(prepared_dataset, ds)
    npz = ds / "labels" / "efficientat-mn04.npz"
    _truncate_half(npz)
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_labels(ds)
    rc, _, err = _cli(capsys, "attributes", ds, "--n", "8")
    _one_line_error(rc, err, str(npz), "truncated or corrupt")
    with pytest.raises(DataError, match="truncated or corrupt"):
        train(ds, tmp_path / "r", preset="tiny", overrides=ONE_STEP, progress=False, threads=1)
    label_dataset(ds, progress=False)
    assert "relabelling" in capsys.readouterr().out
    np.testing.assert_allclose(load_labels(ds).logits, load_labels(prepared_dataset).logits, atol=1e-4)


def test_checkpoint_config_values_are_checked_at_load(run, tmp_path):
    src = read_checkpoint_config(run).path
    edits = {
        "temperature": (lambda m: m.update(temperature=-1), "temperature must be a finite number > 0"),
        "attributes": (lambda m: m.update(attributes_enabled=False), "attributes_enabled is false"),
        "std": (lambda m: m["normalizer"].update(std=[0, 0]), "normalizer needs"),
        "lr": (lambda m: m["train"].update(lr=-1), "train.lr must be"),
    }
    for name, (edit, message) in edits.items():
        ck = tmp_path / name
        shutil.copytree(src, ck)
        meta = json.loads((ck / "config.json").read_text())
        edit(meta)
        (ck / "config.json").write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=message) as e:
            load_generator(ck)
        assert str(ck / "config.json") in str(e.value) and "\n" not in str(e.value)


def test_latest_must_name_a_folder_inside_its_run(run, tmp_path):
    inside = read_checkpoint_config(run).path
    for i, target in enumerate([f"../{run.name}/{inside.name}", str(inside), ".."]):
        other = tmp_path / f"other{i}"
        other.mkdir()
        (other / "LATEST").write_text(target + "\n")
        with pytest.raises(CheckpointError, match="must name a checkpoint folder inside"):
            load_generator(other)
    link = tmp_path / "linked"
    link.mkdir()
    (link / "checkpoint-00000001").symlink_to(inside)
    (link / "LATEST").write_text("checkpoint-00000001\n")
    with pytest.raises(CheckpointError, match="points outside the run folder"):
        load_generator(link)


# ------------------------------------------------------------------ untrusted values and files

@pytest.mark.parametrize("override, key", [
    ("train.gp_lambda=-10", "train.gp_lambda"), ("train.lr=-1", "train.lr"), ("train.lr=NaN", "train.lr"),
    ("train.betas=[2,-1]", "train.betas[0]"), ("train.betas=[0,-1]", "train.betas[1]"),
    ("train.loss_weights.g_attr=-1", "train.loss_weights.g_attr"),
    ("train.loss_weights.d_pitch=NaN", "train.loss_weights.d_pitch"),
    ("train.drift_epsilon=-0.1", "train.drift_epsilon"), ("train.temperature=NaN", "train.temperature"),
    ("train.adam_eps=0", "train.adam_eps"), ("train.keep_checkpoints=0", "train.keep_checkpoints"),
])
def test_bad_config_values_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(DarkGANError) as e:
        resolve_config("tiny", [override])
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_bad_command_line_values(prepared_dataset, run, tmp_path, capsys):
    rc, _, err = _cli(capsys, "train", "--data", prepared_dataset, "--out", tmp_path / "t", "--preset", "tiny",
                      "--threads", "-1")
    _one_line_error(rc, err, "--threads must be >= 1")
    rc, _, err = _cli(capsys, "label", prepared_dataset, "--threads", "-1")
    _one_line_error(rc, err, "--threads must be >= 1")
    rc, _, err = _cli(capsys, "train", "--data", prepared_dataset, "--out", tmp_path / "t", "--preset", "tiny",
                      "--set", "train.lr=NaN")
    _one_line_error(rc, err, "train.lr must be a finite number > 0")
    rc, _, err = _cli(capsys, "train", "--data", prepared_dataset, "--out", run, "--resume", "--preset", "small")
    _one_line_error(rc, err, "is a 'tiny' run", "--preset small")
    assert not (tmp_path / "t").exists()


def test_attributes_n_above_the_rankable_classes_is_an_error(prepared_dataset, tmp_path, capsys):
    ds = tmp_path / "ds"
    shutil.copytree(prepared_dataset, ds, ignore=shutil.ignore_patterns("cache", "audio"))
    before = (ds / "vocabulary.json").read_text()
    rc, _, err = _cli(capsys, "attributes", ds, "--n", "100000")
    _one_line_error(rc, err, "n = 100000 attributes asked", "ask for at most")
    assert (ds / "vocabulary.json").read_text() == before


def test_huge_batch_is_refused_before_allocating(prepared_dataset, tmp_path):
    from darkgan.training.memory import estimate_step_memory

    # the probe's 100000 was killed after allocating 22 GB; its lower bound is already more
    host, dev = estimate_step_memory(resolve_config("tiny", ["train.batch_size=100000"]))[0]
    assert host + dev > 22 * 2**30
    # ten times more than that fits no test machine: refused before anything is allocated or written
    with pytest.raises(DarkGANError, match=r"train.batch_size=1000000 at scale 0 needs at least [0-9.]+ GiB"):
        train(prepared_dataset, tmp_path / "big", preset="tiny", overrides=["train.batch_size=1000000"],
              progress=False, threads=1)
    assert not (tmp_path / "big").exists()


def test_non_finite_wav_is_a_one_line_error_for_tag(tmp_path, capsys):
    wave = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        w = wave.copy()
        w[100:110] = bad
        sf.write(tmp_path / name, w, 16000, subtype="FLOAT")
        for extra in ([], ["--json"]):
            rc, out, err = _cli(capsys, "tag", tmp_path / name, *extra)
            _one_line_error(rc, err, str(tmp_path / name), "NaN or infinite")
            assert out == ""


def test_json_is_always_strict(tmp_path):
    write_json(tmp_path / "x.json", {"nan": math.nan, "inf": [np.float32("inf"), 1.5], "n": np.int64(3)})

    def refuse(token):
        raise AssertionError(f"non-JSON token {token}")

    assert json.loads((tmp_path / "x.json").read_text(), parse_constant=refuse) == \
        {"nan": None, "inf": [None, 1.5], "n": 3}


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    """Files written atomically are readable by other users as ``open`` would make them (mkstemp
    alone gives 0600: an exported instrument unreadable to a DAW running as another user)."""
    import os

    from darkgan.utils.io import atomic_write

    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    with atomic_write(tmp_path / "atomic.txt", "w") as f:
        f.write("x")
    assert os.stat(tmp_path / "atomic.txt").st_mode & 0o777 == os.stat(tmp_path / "plain.txt").st_mode & 0o777
