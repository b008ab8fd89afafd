"""The scaling suite's Markdown tables and figures, from its result (`tfresnet.bench.scaling`)."""

from __future__ import annotations

import os

from tfresnet.bench.common import markdown_table

__all__ = ["format_tables", "draw_figures", "cpu_line"]

_FIGURE_DPI = 120


def _done(result: dict, part: str) -> list[dict]:
    return [p for p in result["points"] if p["part"] == part and p["status"] == "done"]


def _notes(result: dict, part: str) -> list[str]:
    return [f"- `{p['key']}`: {p['status']}: {p.get('reason', '')}" for p in result["points"]
            if p["part"] == part and p["status"] != "done"]


def cpu_line(cpu: dict) -> str:
    """``CPU: <model>, N cores (M usable); avx2 yes, avx512f no, ...``."""
    flags = ", ".join(f"{flag} {'-' if has is None else 'yes' if has else 'no'}" for flag, has in cpu["flags"].items())
    return (f"CPU: {cpu.get('model') or 'unknown'}, {cpu.get('physical_cores') or '?'} cores, "
            f"{cpu.get('usable_cpus')} usable CPUs; {flags}")


def _ratio(points: list[dict], key: str, value: str) -> None:
    """Adds ``vs_first``: each point's `value` over the one with the smallest `key`."""
    if points:
        first = min(points, key=lambda p: p[key])[value]
        for p in points:
            p["vs_first"] = f"{p[value] / first:.2f}x" if first and p[value] else None


def _section(title: str, rows: list[dict], columns, notes: list[str]) -> str:
    if not rows and not notes:
        return ""  # a part this run did not ask for
    text = f"### {title}\n\n" + (markdown_table(rows, columns) if rows else "(no point measured)")
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def format_tables(result: dict) -> str:
    """One table a part, each with the points not measured (and why) beneath it."""
    batch = sorted(_done(result, "batch"), key=lambda p: (p["model"], p["batch_size"]))
    best = {}
    for p in batch:
        if p["examples_per_s"] > best.get(p["model"], {}).get("examples_per_s", 0):
            best[p["model"]] = p
    batch = [dict(p, best="best" if best.get(p["model"]) is p else "") for p in batch]
    dataset = sorted((dict(p) for p in _done(result, "dataset")), key=lambda p: p["train_examples"])
    _ratio(dataset, "train_examples", "steady_epoch_seconds")
    tuning = sorted((dict(p) for p in _done(result, "tuning")), key=lambda p: p["workers"])
    _ratio(tuning, "workers", "trials_per_hour")
    training = sorted((dict(p) for p in _done(result, "training")), key=lambda p: p["workers"])
    _ratio(training, "workers", "examples_per_s")
    for p in training:
        p["label"] = "1 process" if p["workers"] == 1 else f"{p['workers']} workers"
    sections = [
        _section("Training examples/s against batch size (median of rounds; synthetic images)", batch, [
            ("model", "model"), ("input", "input"), ("batch_size", "batch"),
            ("examples_per_s", "examples/s"), ("best", "")], _notes(result, "batch")),
        _section("Time per epoch against dataset size (in-memory arrays; epoch 1 includes tracing)", dataset, [
            ("data", "data"), ("train_examples", "training examples"), ("model", "model"), ("batch_size", "batch"),
            ("first_epoch_seconds", "epoch 1 s"), ("steady_epoch_seconds", "later epochs s"),
            ("steady_examples_per_s", "ex/s (later)"), ("vs_first", "epoch time vs the smallest")],
            _notes(result, "dataset")),
        _section("Tuning trials per hour against --workers (wall time of the whole `tfresnet tune`)", tuning, [
            ("workers", "workers"), ("trials", "completed trials"), ("wall_seconds", "wall s"),
            ("trials_per_hour", "trials / hour"), ("median_trial_seconds", "median trial s"),
            ("vs_first", "vs 1 worker")], _notes(result, "tuning")),
        _section("Training: one process against loopback workers (same global batch)", training, [
            ("label", "processes"), ("data", "data"), ("batch_size", "global batch"), ("epochs", "epochs"),
            ("train_seconds", "train s"), ("examples_per_s", "ex/s"), ("wall_seconds", "wall s"),
            ("vs_first", "vs 1 process")], _notes(result, "training")),
    ]
    return cpu_line(result["cpu"]) + "\n\n" + "\n\n".join(s for s in sections if s)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: str, name: str, result: dict) -> str:
    fig.suptitle(cpu_line(result["cpu"]).split(";")[0], fontsize=9, y=0.995)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    fig.savefig(path, dpi=_FIGURE_DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _batch_figure(points: list[dict], folder: str, result: dict) -> str:
    plt = _pyplot()
    models = list(dict.fromkeys(p["model"] for p in points))
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = sorted((p for p in points if p["model"] == model), key=lambda p: p["batch_size"])
        batches = [p["batch_size"] for p in rows]
        ax.plot(batches, [p["examples_per_s"] for p in rows], "o-", label="tfresnet train step")
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set(xlabel="batch size (examples per step)", ylabel="training throughput (examples/s)",
               title=f"{model} ({rows[0]['input']})", ylim=(0, None))
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, folder, "scaling_batch.png", result)


def _dataset_figure(points: list[dict], folder: str, result: dict) -> str:
    plt = _pyplot()
    rows = sorted(points, key=lambda p: p["train_examples"])
    sizes = [p["train_examples"] for p in rows]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.plot(sizes, [p["first_epoch_seconds"] for p in rows], "o-", label="epoch 1 (with tracing)")
    ax.plot(sizes, [p["steady_epoch_seconds"] for p in rows], "s-", label="later epochs")
    first = rows[0]
    ax.plot(sizes, [first["steady_epoch_seconds"] * n / sizes[0] for n in sizes], ":", color="grey",
            label="proportional to size (from the smallest)")
    for p in rows:
        ax.annotate(f"{p['data']}\n{p['steady_epoch_seconds']:.1f} s", (p["train_examples"], p["steady_epoch_seconds"]),
                    textcoords="offset points", xytext=(-10, 10), ha="right", fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="training examples per epoch", ylabel="seconds per epoch",
           title=f"{first['model']}, batch {first['batch_size']}: time per epoch against dataset size")
    import matplotlib.ticker

    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")  # 60,000, not 6x10^4
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(sizes)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, folder, "scaling_dataset.png", result)


def _bars(ax, points: list[dict], value: str, labels, ylabel: str, title: str) -> None:
    bars = ax.bar(labels, [p[value] or 0 for p in points], color=["tab:blue", "tab:orange", "tab:green"][:len(points)])
    for bar, p in zip(bars, points):
        ax.annotate(f"{p[value]:,.0f}" if p[value] else "-", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set(xlabel="local processes", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")


def _workers_figure(tuning: list[dict], training: list[dict], folder: str, result: dict) -> str:
    plt = _pyplot()
    panels = [x for x in (tuning, training) if x]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    axes = list(axes[0])
    if tuning:
        rows = sorted(tuning, key=lambda p: p["workers"])
        _bars(axes.pop(0), rows, "trials_per_hour", [f"--workers {p['workers']}" for p in rows],
              "completed trials per hour", "tfresnet tune (tiny search)")
    if training:
        rows = sorted(training, key=lambda p: p["workers"])
        _bars(axes.pop(0), rows, "examples_per_s",
              ["1 process" if p["workers"] == 1 else f"{p['workers']} workers" for p in rows],
              "training examples/s (global)", f"tfresnet train ({rows[0]['data']}, batch {rows[0]['batch_size']})")
    return _save(fig, folder, "scaling_workers.png", result)


def draw_figures(result: dict, folder: str) -> list[str]:
    """Draws the parts that have measured points into `folder`; returns the PNG paths."""
    paths = []
    if batch := _done(result, "batch"):
        paths.append(_batch_figure(batch, folder, result))
    if dataset := _done(result, "dataset"):
        paths.append(_dataset_figure(dataset, folder, result))
    tuning, training = _done(result, "tuning"), _done(result, "training")
    if tuning or training:
        paths.append(_workers_figure(tuning, training, folder, result))
    return paths
