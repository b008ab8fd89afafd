"""The `reproduce` suite of `tfresnet bench`: our figures beside the published ones.

    tfresnet bench --suite reproduce --rungs 1,2 --seeds 3 --data-dir ../shared/data
    tfresnet bench --suite reproduce --rungs ch5,degradation

Items (`--rungs`): Nielsen's chapter 6 rungs ``1``..``7`` (`tfresnet.reproduce.nielsen.RUNGS`;
rung 7's seed s is the plurality vote of rung 6's seeds 5s..5s+4, trained where not already), ``ch5`` (the four
chapter 5 depths, and the bias-gradient norms of the k = 4 network at initialisation over 1,000
training digits) and ``degradation`` (He et al. figure 6's four networks, whose training and
validation error curves are drawn side by side). Each finished run is saved to the JSON file at
once, so a suite killed after hours keeps what it finished. Full-length runs take hours on a CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from tfresnet.bench.common import markdown_table, read_result, write_result
from tfresnet.files import write_json_atomic
from tfresnet.reproduce import degradation, nielsen
from tfresnet.runs import RunDir, lock_dir


def _degradation_item(budget: str) -> str:
    """The item of a budget: "degradation" (the paper's 64k iterations) or "degradation-NAME"."""
    return "degradation" if budget == "paper" else f"degradation-{budget}"


ITEMS = (*map(str, nielsen.RUNGS), "ch5", *map(_degradation_item, degradation.BUDGETS))
GRADIENT_DIGITS = 1_000  # Nielsen measures the gradient over the first 1,000 training digits
WALL_FILE = "bench_wall_seconds.json"  # in a run dir: its wall time summed over attempts


def parse_rungs(text: str | None) -> list[str]:
    """``"1,2,ch5"`` -> ``["1", "2", "ch5"]``; None -> every item.

    Raises:
        ValueError: naming an unknown item and the choices.
    """
    items = list(ITEMS) if not text else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        raise ValueError(f"--rungs: unknown {unknown}; choose from {', '.join(ITEMS)}.")
    return items


def _train(config, run_root: str, label: str):
    """Trains one run in ``run_root/label``; a run dir left by a killed suite is resumed."""
    import keras

    from tfresnet.training.trainer import train

    run_dir = os.path.join(run_root, label)
    rundir = RunDir(run_dir)
    resume = rundir.is_configured()
    # The run's wall time over every attempt: a resumed run adds to what earlier attempts took.
    # It is written after every epoch, so an attempt that is killed still counts up to its last
    # epoch (its backup's), the one the next attempt resumes from.
    path = os.path.join(run_dir, WALL_FILE)
    earlier = 0.0
    if resume and os.path.exists(path):
        with open(path) as f:
            earlier = float(json.load(f)["seconds"])
    if resume and rundir.is_finished():
        # Nothing is trained again: the run took what its attempts took, not this check's seconds;
        # a run finished by something that kept no wall file took an unknown time (None), not 0 s.
        return train(config, run_dir, recipe=label, resume=True), earlier if os.path.exists(path) else None
    started = time.perf_counter()

    def record(*_) -> float:
        seconds = earlier + time.perf_counter() - started
        write_json_atomic(path, {"seconds": seconds})
        return seconds

    result = train(config, run_dir, recipe=label, resume=resume,
                   callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=record)])
    return result, record()


def _label(stem: str, seed: int, batch_size: int | None) -> str:
    return f"{stem}-seed{seed}" + (f"-batch{batch_size}" if batch_size else "")


def _prepare(config, *, seed: int, data_dir: str | None, smoke: bool):
    changes = {"seed": seed, "smoke": smoke, "verbose": 0 if smoke else 2}
    if smoke and not data_dir:
        changes["data"] = "mnist-sample"  # the machinery, not the numbers: no files needed
    if data_dir:
        changes["data_dir"] = data_dir
    return dataclasses.replace(config, **changes)


def _vote(models, config) -> float:
    """Plurality vote of `models` on the config's test split (ties to the lower class), in %."""
    from tfresnet.bench.time_to_accuracy import held_out_arrays

    x, y, _ = held_out_arrays(config)
    votes = np.stack([np.argmax(m.predict(x, verbose=0), axis=1) for m in models])
    counts = np.apply_along_axis(np.bincount, 0, votes, minlength=10)
    return float(np.mean(np.argmax(counts, axis=0) == y) * 100)


def _run_rung(rung: int, seed: int, run_root: str, batch_size: int | None = None, **options) -> dict:
    row = nielsen.RUNGS[rung]
    config = _prepare(nielsen.rung_config(rung, batch_size), seed=seed, **options)
    if row.votes == 1:
        extra = {}
        result, seconds = _train(config, run_root, _label(f"rung{rung}", seed, batch_size))
        accuracy = result.metrics["accuracy"] * 100  # test, at the best validation epoch
    else:
        # The voters are `row.vote_of`'s runs (same config and run dir), so a rung-6 run already
        # finished is resumed as finished and only evaluated; the wall time is the five trainings'.
        models, seconds, extra = [], 0.0, {"voters": []}
        for voter in range(seed * row.votes, (seed + 1) * row.votes):
            voter_config = _prepare(nielsen.rung_config(row.vote_of, batch_size), seed=voter, **options)
            result, took = _train(voter_config, run_root, _label(f"rung{row.vote_of}", voter, batch_size))
            models.append(result.model)
            seconds = None if seconds is None or took is None else seconds + took
            extra["voters"].append({"seed": voter, "ours": result.metrics["accuracy"] * 100})
        accuracy = _vote(models, config)
    return {"item": str(rung), "seed": seed, "model": row.model, "book": row.book,
            "ours": accuracy, **_settings(config), "wall_seconds": _rounded(seconds), **extra}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _settings(config) -> dict:
    """What a row was trained with, so the table says which runs are the book's settings."""
    return {"batch_size": config.batch_size, "lr": config.lr, "epochs": config.epochs, "output": config.output}


def _run_ch5(seed: int, run_root: str, batch_size: int | None = None, **options) -> list[dict]:
    rows = []
    for depth in nielsen.CH5_DEPTHS:
        config = _prepare(nielsen.ch5_config(depth, batch_size), seed=seed, **options)
        # Runs with the book's sigmoid outputs keep out of the dirs of earlier softmax runs.
        stem = f"ch5-30x{depth}" + ("-sigmoid" if config.output == "sigmoid" else "")
        result, seconds = _train(config, run_root, _label(stem, seed, batch_size))
        history = result.history
        # The book's chapter 5 figures are the best validation accuracy over the epochs.
        ours = float(history["val_accuracy"].max() * 100) if "val_accuracy" in history else None
        rows.append({"item": f"ch5 30x{depth}", "seed": seed, "model": config.model,
                     "book": nielsen.CH5_BOOK[depth], "ours": ours, **_settings(config),
                     "wall_seconds": _rounded(seconds)})
    return rows


def ch5_gradient_norms(seed: int, *, data_dir: str | None, smoke: bool, output: str = "sigmoid") -> list[float]:
    """Each hidden layer's bias-gradient norm of a fresh [784, 30 x 4, 10] network, input side first.

    Args:
        output: ``"sigmoid"``, the book's network2 (sigmoid outputs, cross-entropy summed over
            them), or ``"softmax"``, the network `nielsen.ch5_config` trains (softmax and
            log-likelihood).
    """
    import keras

    from tfresnet import create_model
    from tfresnet.inspect.gradients import gradient_norms
    from tfresnet.training.session import load_data

    config = _prepare(nielsen.ch5_config(4), seed=seed, data_dir=data_dir, smoke=smoke)
    bundle = load_data(dataclasses.replace(config, batch_size=GRADIENT_DIGITS, verbose=0))
    x, y = next(iter(bundle.train))  # shuffled training digits; the book takes the first 1,000
    keras.utils.set_random_seed(seed)
    model = create_model(config.model, preprocessing="auto", classifier_activation=output)  # raw pixels in
    norms = gradient_norms(model, x.numpy(), y.numpy())
    hidden = norms[(norms["weight"] == "bias") & norms["layer"].str.startswith("dense")]
    return [float(v) for v in hidden["grad_norm"]]


def _run_degradation(item: str, seed: int, run_root: str, **options) -> Iterator[dict]:
    """Yields figure 6's networks' rows one at a time, so each is saved as it finishes."""
    budget = item.partition("-")[2] or "paper"
    for model in degradation.DEGRADATION_MODELS:
        config = _prepare(degradation.degradation_config(model, budget), seed=seed, **options)
        result, seconds = _train(config, run_root, f"{item}-{model}-seed{seed}")
        history = result.history
        yield {
            "item": f"{item} {model}", "seed": seed, "model": model, "book": None, "budget": budget,
            "ours": result.metrics["accuracy"] * 100, "wall_seconds": _rounded(seconds),
            "train_error": [1 - float(a) for a in history["accuracy"]],
            "val_error": [1 - float(a) for a in history.get("val_accuracy", [])],
        }


def run(*, rungs: str | None = None, seeds: int = 1, data_dir: str | None = None, smoke: bool = False,
        out_path: str | None = None, run_root: str | None = None, batch_size: int | None = None) -> dict:
    """Trains what `rungs` asks, `seeds` times each, saving `out_path` after every finished run.

    A ladder takes hours, so a suite is built to be run in pieces: runs already in `out_path`
    are kept (a new run of the same item, seed and batch replaces its row), and a run dir left
    in `run_root` by a killed suite is resumed from its last epoch backup.

    Args:
        batch_size: the Nielsen items' mini-batch, eta scaled linearly
            (`tfresnet.reproduce.nielsen.rung_config`); None for the book's 10.

    Returns:
        ``{"runs": [...], "gradient_norms": {...}, "figures": [...]}``.

    Raises:
        ValueError: for an unknown item, ``seeds < 1`` or a bad `batch_size`.
    """
    items = parse_rungs(rungs)
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1. Received --seeds {seeds}")
    nielsen.rung_config(1, batch_size)  # a bad batch fails before anything trains
    from tfresnet.data.registry import resolve_data_dir

    options = {"data_dir": resolve_data_dir(data_dir), "smoke": smoke}
    run_root = run_root or tempfile.mkdtemp(prefix="tfresnet-reproduce-")
    result = {"items": items, "seeds": seeds, "smoke": smoke, "runs": [], "gradient_norms": None}

    def save(rows):
        with _locked(out_path):
            # Read again under the lock: two suites may share the file (say, ch5 beside a rung).
            if out_path and os.path.exists(out_path):
                previous = read_result(out_path)
                if previous.get("smoke") == smoke:  # smoke rows never mix with measured ones
                    result["runs"] = previous.get("runs", [])
                    result["gradient_norms"] = result["gradient_norms"] or previous.get("gradient_norms")
            keys = {_key(r) for r in rows}
            result["runs"] = [r for r in result["runs"] if _key(r) not in keys] + rows
            if out_path:
                write_result(out_path, "reproduce", result)

    save([])

    nielsen_options = {**options, "batch_size": batch_size}
    for item in items:
        for seed in range(seeds):
            if item == "ch5":
                save(_run_ch5(seed, run_root, **nielsen_options))
            elif item.startswith("degradation"):
                for row in _run_degradation(item, seed, run_root, **options):
                    save([row])
            else:
                save([_run_rung(int(item), seed, run_root, **nielsen_options)])
        if item == "ch5":
            result["gradient_norms"] = {"book": list(nielsen.CH5_GRADIENT_NORMS),
                                        "ours": ch5_gradient_norms(0, **options),
                                        "ours_softmax": ch5_gradient_norms(0, **options, output="softmax")}
            save([])
    result["figures"] = draw_figures(result, os.path.dirname(out_path) if out_path else run_root)
    save([])
    return result


def _locked(out_path: str | None):
    """Holds an exclusive lock on ``OUT_PATH.lock`` (`tfresnet.runs.lock_dir`: released by the
    kernel if the process dies), waiting while another suite holds it: it does so only while it
    saves, for a moment."""
    if not out_path:
        return contextlib.nullcontext()
    folder, name = os.path.split(os.path.abspath(out_path))
    return lock_dir(folder, lock_file=f"{name}.lock", what="another reproduce suite", wait=True)


def _key(row: dict) -> tuple:
    item, batch, output = _group(row)
    return item, row["seed"], batch, output


def _group(row: dict) -> tuple:
    """The rows of one item and setting, whose seeds are averaged (earlier rows were all softmax)."""
    return row["item"], row.get("batch_size"), row.get("output", "softmax")


def summarise(runs: list[dict]) -> list[dict]:
    """One row per item and mini-batch: the book's figure, ours as mean +- sd over seeds, the difference."""
    ids = {group: i for i, group in enumerate(dict.fromkeys(map(_group, runs)))}
    frame = pd.DataFrame({"ours": [r["ours"] for r in runs], "book": [r["book"] for r in runs],
                          "lr": [r.get("lr") for r in runs], "wall": [r["wall_seconds"] for r in runs]},
                         dtype=float).assign(group=[ids[_group(r)] for r in runs])
    # Seeds still training (ours None) are left out of every figure but keep their group's row.
    done = frame.dropna(subset=["ours"]).groupby("group").agg(
        book=("book", "first"), lr=("lr", "first"), mean=("ours", "mean"), sd=("ours", "std"),
        n=("ours", "size"), wall=("wall", lambda w: w.sum(min_count=len(w)))).reindex(range(len(ids)))
    rows = []
    for (item, batch, output), stats in zip(ids, done.itertuples()):
        n = 0 if pd.isna(stats.n) else int(stats.n)
        book, mean = (None if pd.isna(v) else v for v in (stats.book, stats.mean))
        settings = f"batch {batch}, eta {stats.lr:g}" if batch and n else "-"
        settings += " (book)" if batch == nielsen.BOOK_BATCH else ""
        settings += f", {output} outputs" if item.startswith("ch5") else ""
        rows.append({
            "item": item, "settings": settings, "book": None if book is None else f"{book:.2f}",
            "ours": None if mean is None else f"{mean:.2f} +- {stats.sd if n > 1 else 0.0:.2f} (n={n})",
            "diff": None if mean is None or book is None else f"{mean - book:+.2f}",
            # A seed of unknown wall time (its run kept no wall file) makes the sum unknown, not smaller.
            "wall": "-" if pd.isna(stats.wall) else f"{stats.wall:,.0f} s",
        })
    return rows


def format_tables(result: dict) -> str:
    """The Markdown table: rung, book, ours (mean +- sd over seeds), difference in points, wall time."""
    table = markdown_table(summarise(result["runs"]), [
        ("item", "rung"), ("settings", "settings"), ("book", "book %"), ("ours", "ours % (mean +- sd)"),
        ("diff", "diff (points)"), ("wall", "wall time")])
    norms = result.get("gradient_norms")
    if norms:
        softmax = norms.get("ours_softmax") or [None] * len(norms["book"])
        rows = [{"layer": f"hidden {i + 1}", "book": b, "ours": o, "softmax": f"{m:.4f}" if m else None}
                for i, (b, o, m) in enumerate(zip(norms["book"], norms["ours"], softmax))]
        rows.append({"layer": "last / first", "book": f"{norms['book'][-1] / norms['book'][0]:.0f}x",
                     "ours": f"{norms['ours'][-1] / norms['ours'][0]:.0f}x",
                     "softmax": f"{softmax[-1] / softmax[0]:.0f}x" if softmax[0] else None})
        table += "\n\nCh. 5 bias-gradient norms at initialisation (k = 4; ours: the book's sigmoid outputs):\n\n"
        table += markdown_table(rows, [("layer", "layer"), ("book", "book"), ("ours", "ours"),
                                       ("softmax", "ours, softmax outputs")])
    return table


def draw_figures(result: dict, folder: str) -> list[str]:
    """Draws the degradation curves and the gradient norms where the runs hold them; returns paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    curves = [r for r in result["runs"] if "train_error" in r and r["seed"] == 0]
    for budget in degradation.BUDGETS:  # one figure a budget: their x axes differ
        runs = [r for r in curves if r.get("budget", "paper") == budget]
        if not runs:
            continue
        steps = degradation.BUDGETS[budget].steps_per_epoch
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for r in runs:
            ax = axes[0 if r["model"].startswith("plain") else 1]
            x = np.arange(1, len(r["train_error"]) + 1) * (steps or 1)
            # Dashed: training error, bold: validation error, as the paper's figure 6.
            line, = ax.plot(x, np.array(r["train_error"]) * 100, "--", label=f"{r['model']} train")
            if r["val_error"]:
                ax.plot(x, np.array(r["val_error"]) * 100, color=line.get_color(), linewidth=2,
                        label=f"{r['model']} val")
        for ax, title in zip(axes, ("plain", "residual")):
            ax.set(title=f"{title} ({budget} budget)", xlabel="iterations" if steps else "epoch",
                   ylabel="error (%)", yscale="log")  # 90% and 0.5% both readable
            percent = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 60, not 6 x 10^1
            ax.yaxis.set_major_formatter(percent)
            ax.yaxis.set_minor_formatter(percent)
            ax.legend()
        paths.append(os.path.join(folder, f"reproduce_{_degradation_item(budget)}.png"))
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    norms = result.get("gradient_norms")
    if norms:
        fig, ax = plt.subplots(figsize=(5, 4))
        layers = np.arange(1, len(norms["book"]) + 1)
        ax.semilogy(layers, norms["book"], "o-", label="book")
        ax.semilogy(layers, norms["ours"], "s-", label="ours (sigmoid outputs, as the book)")
        if norms.get("ours_softmax"):
            ax.semilogy(layers, norms["ours_softmax"], "^--", label="ours, softmax outputs")
        ax.set(xlabel="hidden layer", ylabel="bias-gradient norm", title="[784, 30 x 4, 10] at init")
        ax.legend()
        paths.append(os.path.join(folder, "reproduce_gradients.png"))
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return paths
