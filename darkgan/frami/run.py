"""Resumable runs: train a teacher on data, distil a student (``darkgan distill-tagger``).

Methods (the columns of FRAMI's Table 2): ``data`` (the student trained on labelled data),
``kd`` (data-driven Hinton KD on the real training notes), ``adi`` (KD on DeepInversion samples)
and ``frami`` (KD + reused hidden states on feature-invariant contrastive inversion samples).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from darkgan.errors import DarkGANError
from darkgan.frami import checkpoint as ck
from darkgan.frami.config import FramiConfig
from darkgan.frami.distill import (
    HiddenReuse,
    accuracy,
    augment_synthesized,
    kd_step,
    predict,
    supervised_step,
    train_epoch,
)
from darkgan.frami.features import load_mel_split
from darkgan.frami.inversion import SpectrogramGenerator, invert_batch, memory_embeddings, synthesizer_for
from darkgan.frami.models import SoundClassifier, check_invertible, n_params
from darkgan.utils.io import folder_lock

METHODS = ("data", "kd", "adi", "frami")


@dataclass
class FitResult:
    """What a training phase did: ``epochs`` done, ``history`` (mean losses per epoch), ``done``."""

    epochs: int
    history: list[dict] = field(default_factory=list)
    done: bool = False


def fit(out: Path, name: str, model: torch.nn.Module, extra: list[torch.nn.Module], n: int, step, cfg: FramiConfig,
        resume: bool, until: int | None = None) -> FitResult:
    """Train ``model`` (+ ``extra`` modules, e.g. adapters) for ``cfg.train.epochs`` passes over
    ``n`` items with ``step(index) -> losses``; checkpoints ``OUT/<name>.state.pt`` every epoch and
    ``OUT/<name>.safetensors`` at the end; stops after ``cfg.train.max_minutes`` (resume continues)
    or, with ``until``, after that epoch (one round of an interleaved run; the learning-rate
    schedule still spans ``cfg.train.epochs``)."""
    tc = cfg.train
    params = [p for m in [model, *extra] for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    state_path, res = out / f"{name}.state.pt", FitResult(0)
    if resume and state_path.exists():
        st = ck.load_state(state_path)
        for m, sd in zip([model, *extra], st["modules"]):
            m.load_state_dict(sd)
        opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"]), gen.set_state(st["gen"])
        res = FitResult(st["epoch"], st["history"])
    deadline = time.time() + 60 * tc.max_minutes if tc.max_minutes else None
    target = tc.epochs if until is None else min(until, tc.epochs)
    with tqdm(total=target, initial=min(res.epochs, target), desc=f"{name} epochs", unit="ep") as bar:
        while res.epochs < target:
            losses = train_epoch([model, *extra], opt, n, tc.batch_size, step, gen, deadline, bar)
            if losses is None:
                return res
            sched.step()
            res.epochs += 1
            res.history.append({"epoch": res.epochs, **losses})
            ck.save_state(state_path, {"modules": [m.state_dict() for m in [model, *extra]], "opt": opt.state_dict(),
                                       "sched": sched.state_dict(), "gen": gen.get_state(), "epoch": res.epochs,
                                       "history": res.history})
            bar.update(1)
    if res.epochs < tc.epochs:
        return res
    ck.save_tensors(out / f"{name}.safetensors", model.state_dict())
    res.done = True
    return res


def _check_out(out: Path, resume: bool) -> None:
    if (out / "config.json").exists() and not resume:
        raise DarkGANError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")


def train_teacher(data: str | Path, out: str | Path, cfg: FramiConfig, resume: bool = False) -> dict:
    """Train the teacher (``cfg.teacher``) on the train split of ``data``; writes ``OUT/teacher.safetensors``,
    ``config.json`` and ``results.json`` (test accuracy). Returns the results dict."""
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        _check_out(out, resume)
        torch.manual_seed(cfg.seed)
        train, stats = load_mel_split(data, "train", cfg.data.n_mels, cfg.data.per_class, cfg.data.seed, by=cfg.data.split)
        ck.write_run_config(out, cfg, role="teacher", data=str(data), mel_stats=list(stats))
        model = SoundClassifier(cfg.teacher)
        t0 = time.process_time()
        res = fit(out, "teacher", model, [], len(train.x),
                  lambda i, g: supervised_step(model, train.x[i], train.y[i]), cfg, resume)
        return _finish(out, data, cfg, stats, {"teacher": model}, res, t0)


def _finish(out, data, cfg, stats, models: dict, res: FitResult, t0: float, extra: dict | None = None,
            write: bool = True) -> dict:
    """The results of a phase (test accuracy of ``models`` when done); written to ``OUT/results.json``
    unless ``write`` is off (the caller adds more first: ``done`` must never be on disk before them)."""
    from darkgan.utils.io import write_json

    results = {"done": res.done, "epochs": res.epochs, "train_cpu_s": time.process_time() - t0,
               "history": res.history, **(extra or {})}
    if res.done:
        test, _ = load_mel_split(data, "test", cfg.data.n_mels, cfg.data.per_class, cfg.data.seed, stats, cfg.data.split)
        for name, m in models.items():
            results[f"{name}_test_acc"] = accuracy(predict(m, test.x), test.y)
            results[f"{name}_params"] = n_params(m)
        results["n_test"] = len(test.y)
    if write:
        write_json(out / "results.json", results)
    return results


def load_teacher(folder: str | Path) -> tuple[SoundClassifier, FramiConfig, dict]:
    """``(teacher in eval mode, its FramiConfig, the rest of its config.json)`` from a teacher run folder."""
    folder = Path(folder)
    cfg, extra = ck.read_run_config(folder)
    model = ck.load_module(SoundClassifier(cfg.teacher), folder / "teacher.safetensors").eval()
    return model, cfg, extra


def synthesize(teacher: torch.nn.Module, out: Path, cfg: FramiConfig, method: str, shape: tuple[int, int],
               classes: torch.Tensor | None = None, student: torch.nn.Module | None = None) -> tuple[dict, dict]:
    """Fill ``OUT/memory.safetensors`` with ``cfg.inversion.n_samples`` inverted samples, batch by batch
    (target ``classes`` round-robin; default all the teacher's; ``student``: for ADI's competition
    term); resumes from the samples already there. For FRAMI the teacher's embeddings of the samples
    (its memory-bank negatives) are kept too (key ``emb``). With ``inversion.synthesizer = generator`` the
    generator's weights are saved in the same file after every batch (keys ``generator.*``), so a
    resumed run continues exactly. Returns ``(cost facts, memory {"x": [N, 1, M, T], "y": [N],
    "cpu_s", ...})``."""
    classes = torch.arange(teacher.n_classes) if classes is None else classes
    ic, path = cfg.inversion, out / "memory.safetensors"
    mem = ck.load_tensors(path) if path.exists() else {"x": torch.zeros(0, 1, *shape), "y": torch.zeros(0, dtype=torch.long),
                                                         "cpu_s": torch.zeros(())}
    net = _inversion_generator(mem, cfg, shape, method, path)
    negatives = method == "frami" and ic.w_fic > 0
    if negatives and ("emb" not in mem or len(mem["emb"]) != len(mem["y"])):  # new, or written before the cache
        mem["emb"] = memory_embeddings(teacher, mem["x"])
    n_batches = -(-ic.n_samples // ic.batch_size)
    with tqdm(total=n_batches * ic.steps, initial=(len(mem["y"]) // ic.batch_size) * ic.steps,
              desc=f"{method} inversion", unit="step") as bar:
        while len(mem["y"]) < ic.n_samples:
            b = min(ic.batch_size, ic.n_samples - len(mem["y"]))
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + len(mem["y"]))  # per batch: resumable
            y = classes[torch.arange(len(mem["y"]), len(mem["y"]) + b) % len(classes)]
            t0 = time.process_time()
            batch = invert_batch(teacher, y, shape, ic, method, mem["emb"] if negatives else mem["x"], gen, bar,
                                 student, net)
            new = {"x": torch.cat([mem["x"], batch.x]), "y": torch.cat([mem["y"], y])}
            if negatives:
                emb = memory_embeddings(teacher, batch.x)
                new["emb"] = torch.cat([mem["emb"], emb]) if len(mem["emb"]) else emb
            mem = {**new, "cpu_s": mem["cpu_s"] + (time.process_time() - t0)}
            if net is not None:
                mem.update({f"{GEN_PREFIX}{k}": v for k, v in net.state_dict().items()})
            ck.save_tensors(path, mem)
    return {"n_synth": len(mem["y"]), "inversion_cpu_s": float(mem["cpu_s"]),
            "synth_per_cpu_s": len(mem["y"]) / max(float(mem["cpu_s"]), 1e-9)}, mem


#: Key prefix of the inversion generator's weights in ``memory.safetensors``.
GEN_PREFIX = "generator."


def _inversion_generator(mem: dict, cfg: FramiConfig, shape, method: str, path: Path) -> SpectrogramGenerator | None:
    """The ``generator`` synthesizer's network: restored from ``mem`` when saved there, else drawn
    from the run's seed; ``None`` when ``method`` synthesizes pixels (:func:`synthesizer_for`).
    Raises :class:`DarkGANError` naming ``path`` when the saved generator does not fit the settings."""
    ic = cfg.inversion
    if synthesizer_for(method, ic) != "generator":
        return None
    net = SpectrogramGenerator(shape, ic.z_dim, ic.g_channels)
    saved = {k[len(GEN_PREFIX):]: v for k, v in mem.items() if k.startswith(GEN_PREFIX)}
    if not saved:
        return net.init_weights(torch.Generator().manual_seed(cfg.seed * 1_000_003 - 1))
    try:
        net.load_state_dict(saved)
    except RuntimeError as e:
        raise DarkGANError(f"{path}: its generator does not fit inversion.z_dim / g_channels "
                           f"({str(e).splitlines()[0]})") from None
    return net


def distill_tagger(teacher_dir: str | Path, data: str | Path, out: str | Path, method: str, cfg: FramiConfig,
                   resume: bool = False) -> dict:
    """Train the student ``cfg.student`` by ``method`` (:data:`METHODS`) from the teacher in ``teacher_dir``
    (a ``train-tagger`` run folder, or the name of the AudioSet teacher, ``efficientat``: then
    :func:`darkgan.frami.audioset.distill_from_audioset`).

    Writes ``OUT/config.json``, ``student.safetensors``, ``results.json`` / ``results.md`` (test
    accuracy of student and teacher, agreement, cost) and, for ``adi``/``frami``, ``memory.safetensors``
    and ``synth.png``. Resumes (``resume=True``) after the last saved inversion batch or epoch.
    The teacher run's ``teacher`` and ``data`` settings (architecture, mel bands, which notes)
    replace ``cfg``'s, so student and teacher see the same inputs and test notes.

    Raises:
        DarkGANError: unknown method; teacher without BatchNorm or statistics pooling (``adi``/``frami``);
            ``OUT`` already holds a run and ``resume`` is off.
    """
    if method not in METHODS:
        raise DarkGANError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    cfg.validate()
    if not Path(teacher_dir).exists() and _is_tagger_name(str(teacher_dir)):
        from darkgan.frami.audioset import distill_from_audioset

        return distill_from_audioset(str(teacher_dir), data, out, method, cfg, resume)
    teacher, t_cfg, t_extra = load_teacher(teacher_dir)
    cfg.teacher, cfg.data = t_cfg.teacher, t_cfg.data
    if method in ("adi", "frami"):
        check_invertible(teacher, need_pooling=method == "frami")
    stats, out = tuple(t_extra["mel_stats"]), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        _check_out(out, resume)
        ck.write_run_config(out, cfg, role="student", method=method, teacher=str(teacher_dir), data=str(data),
                            mel_stats=list(stats))
        torch.manual_seed(cfg.seed)
        student, t0 = SoundClassifier(cfg.student), time.process_time()
        if method in ("adi", "frami"):
            facts, res = fit_data_free(teacher, student, out, cfg, method, (cfg.data.n_mels, 32), resume)
        else:
            facts, step, n = _student_task(teacher, student, cfg, method, data, stats)
            res = fit(out, "student", student, [], n, step, cfg, resume)
        results = _finish(out, data, cfg, stats, {"student": student, "teacher": teacher}, res, t0, {"method": method, **facts},
                          write=False)
        if res.done:
            results.update(_agreement_and_speed(teacher, student, data, cfg, stats))
        from darkgan.utils.io import write_json

        write_json(out / "results.json", results)
        if res.done:
            _write_tables(out, results)
        return results


def _student_task(teacher, student, cfg, method, data, stats):
    """``(facts, step(index) -> losses, n items)`` of a method on the real notes (``data``, ``kd``)."""
    train, _ = load_mel_split(data, "train", cfg.data.n_mels, cfg.data.per_class, cfg.data.seed, stats, cfg.data.split)
    if method == "data":
        return {}, lambda i, g: supervised_step(student, train.x[i], train.y[i]), len(train.y)
    return {}, lambda i, g: kd_step(student, teacher, train.x[i], cfg.train), len(train.y)


def fit_data_free(teacher, student, out: Path, cfg: FramiConfig, method: str, shape: tuple[int, int], resume: bool,
                  classes: torch.Tensor | None = None, names=None, multilabel: bool = False) -> tuple[dict, FitResult]:
    """Train ``student`` by a data-free method (``adi``/``frami``): in ``cfg.inversion.rounds`` rounds,
    synthesize the next share of the memory (:func:`synthesize`; from round 2 on against the
    student when ``inversion.w_adv`` > 0), then train the next share of ``train.epochs`` by KD
    (+ hidden-state reuse for ``frami`` unless ``train.w_hidden`` is 0) on the memory so far. One
    round = synthesize all, then distil. Draws ``synth.png``. Returns ``(cost facts, FitResult)``; the
    facts' ``train_cpu_s`` is the student's training in this process, without the inversion (whose
    CPU is ``inversion_cpu_s``)."""
    from dataclasses import replace

    from darkgan.frami.plots import save_synth_grid

    reuse = HiddenReuse(student, teacher) if method == "frami" and cfg.train.w_hidden > 0 else None
    ic, rounds, epochs = cfg.inversion, cfg.inversion.rounds, cfg.train.epochs
    fit_cpu = 0.0  # the student's training alone (the inversion's CPU is its own fact)
    for r in range(1, rounds + 1):
        part = replace(cfg, inversion=replace(ic, n_samples=-(-ic.n_samples * r // rounds)))
        facts, mem = synthesize(teacher, out, part, method, shape, classes, student if r > 1 else None)
        step = lambda i, g, x=mem["x"]: kd_step(student, teacher, augment_synthesized(x[i], cfg.train.augment, g),
                                                cfg.train, reuse, multilabel=multilabel)
        until, t0 = -(-epochs * r // rounds), time.process_time()
        res = fit(out, "student", student, [reuse] if reuse is not None else [], len(mem["y"]), step, cfg,
                  resume or r > 1, until)
        fit_cpu += time.process_time() - t0
        if res.epochs < until:  # cut by train.max_minutes: --resume continues
            break
    save_synth_grid(out / "synth.png", mem["x"], mem["y"], teacher, names=names, multilabel=multilabel)
    return {**facts, "train_cpu_s": fit_cpu}, res


def _is_tagger_name(name: str) -> bool:
    from darkgan.teacher import canonical_name

    try:
        canonical_name(name)
        return True
    except DarkGANError:
        return False


def _agreement_and_speed(teacher, student, data, cfg, stats) -> dict:
    test, _ = load_mel_split(data, "test", cfg.data.n_mels, cfg.data.per_class, cfg.data.seed, stats, cfg.data.split)
    t_logits, s_logits = predict(teacher, test.x), predict(student, test.x)
    out = {"agreement": float((t_logits.argmax(1) == s_logits.argmax(1)).float().mean())}
    for name, m in (("teacher", teacher), ("student", student)):
        t0 = time.perf_counter()
        predict(m, test.x)
        out[f"{name}_notes_per_s"] = len(test.x) / (time.perf_counter() - t0)
    return out


#: Rows of ``results.md``: (label, format of the results' values); rows whose keys are absent are left out.
TABLE_ROWS = (
    ("method", "{method}"), ("teacher", "{teacher}"), ("student test acc", "{student_test_acc:.4f}"),
    ("teacher test acc", "{teacher_test_acc:.4f}"), ("agreement with teacher (top-1)", "{agreement:.4f}"),
    ("agreement with teacher (top-1 among the vocabulary's classes)", "{agreement_vocab:.4f}"),
    ("mean rho over the vocabulary's classes (Pearson, probabilities)", "{mean_rho_vocab:.4f}"),
    ("top-1 agreement of a constant answer (floor)", "{agreement_constant:.4f}"),
    ("top-1 agreement among the vocabulary's classes of a constant answer (floor)", "{agreement_vocab_constant:.4f}"),
    ("student / teacher params", "{student_params} / {teacher_params}"),
    ("student / teacher notes/s (log-mel in, 1 thread)", "{student_notes_per_s:.0f} / {teacher_notes_per_s:.0f}"),
    ("teacher front end notes/s (wave to log-mel)", "{frontend_notes_per_s:.0f}"),
    ("training notes", "{n_train}"), ("test notes", "{n_test}"), ("student training CPU s", "{train_cpu_s:.0f}"),
    ("synthesized samples", "{n_synth}"), ("inversion CPU s", "{inversion_cpu_s:.0f}"),
    ("inversion samples per CPU s", "{synth_per_cpu_s:.3f}"),
)


def _write_tables(out: Path, r: dict) -> None:
    """``OUT/results.md``: the :data:`TABLE_ROWS` whose values ``r`` holds."""
    from darkgan.utils.io import atomic_write

    rows = []
    for label, fmt in TABLE_ROWS:
        try:
            rows.append((label, fmt.format(**r)))
        except KeyError:
            continue
    with atomic_write(out / "results.md", "w") as f:
        f.write("| quantity | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows))
