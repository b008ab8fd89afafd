"""Does the package work installed from its wheel, outside the repository? (`make wheel-check`)

    python scripts/wheel_check.py            # about 1-2 minutes on 2 CPU cores
    python scripts/wheel_check.py --keep     # leave the temporary folder for a look

The editable install of a checkout hides whether the package data (the MNIST sample, the model
table, the recipes) ships at all, so this:

1. copies the files git knows (tracked, or new and not ignored) to a temporary folder outside the
   checkout and builds the wheel there, without the network (``pip wheel --no-deps
   --no-build-isolation --no-index``: the build uses this environment's setuptools);
2. makes a fresh virtual environment beside it and installs the wheel into it, not editable.
   The dependencies come from this environment: a ``.pth`` file names its site-packages folder,
   whose own ``.pth`` files (among them the editable install's finder) Python does not run for a
   folder named that way, so ``import tfresnet`` can only find the wheel's copy (checked);
3. from an empty folder, runs the installed ``tfresnet``: ``--version``, ``recipes``,
   ``list-models``, a smoke training run of ``mnist_resnet`` by name, ``predict`` on a PNG and
   ``export``, and checks the installed package holds every file of the source package.

Prints each step's time; exits 1 naming the first check that failed.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in the fresh environment: where tfresnet was imported from, and every file it holds.
_INSTALLED = """
import json, pathlib, tfresnet
package = pathlib.Path(tfresnet.__file__).parent
files = sorted(str(p.relative_to(package)) for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts)
print(json.dumps({"file": tfresnet.__file__, "version": tfresnet.__version__, "files": files}))
"""


class CheckFailed(Exception):
    """A check of the installed package that did not hold."""


def source_files() -> list[str]:
    """The checkout's files as git sees them: tracked, or new and not ignored."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise CheckFailed(f"the wheel check copies the files git knows; {ROOT} is not a git checkout ({err})") from None
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def package_files(files: list[str]) -> list[str]:
    """What the wheel must hold of the source package: every file under tfresnet/, relative to it."""
    return sorted(name[len("tfresnet/"):] for name in files
                  if name.startswith("tfresnet/") and not name.endswith(".pyc"))


def build_wheel(files: list[str], tmp: Path) -> Path:
    src = tmp / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(tmp / "dist"), str(src)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("tfresnet-*.whl")
    return wheel


def make_venv(tmp: Path, wheel: Path) -> Path:
    """A fresh environment with the wheel installed and this environment's packages importable."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Plain folder lines only: Python runs a .pth file's `import` lines, never those of the
    # folders it names, so the editable install's finder stays out.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "tfresnet_wheel_check_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    # pip comes from this environment through that .pth; --ignore-installed: the editable
    # tfresnet it can see there is neither uninstalled nor taken as already installed.
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed",
          str(wheel)], cwd=tmp)
    return venv


def _run(command: list[str], *, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-2000:]}"
                          f"{done.stderr[-3000:]}")
    return done.stdout


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def write_digit_png(work: Path, package: Path) -> Path:
    """The first test digit of the installed MNIST sample, as a PNG."""
    import numpy as np
    from PIL import Image

    with np.load(package / "data" / "mnist_sample.npz") as sample:
        image = sample["x_test"][0]
    path = work / "digit.png"
    Image.fromarray(np.asarray(image, dtype="uint8")).save(path)
    return path


def check_installed(venv: Path, work: Path, expected_files: list[str], version: str) -> Path:
    """The package imports from `venv`, not the checkout, with every file of the source package."""
    info = json.loads(_run([str(venv / "bin" / "python"), "-c", _INSTALLED], cwd=work, env=_env(venv)))
    package = Path(info["file"]).parent
    _check(package.is_relative_to(venv), f"tfresnet was imported from {info['file']}, not from {venv}")
    missing = sorted(set(expected_files) - set(info["files"]))
    _check(not missing, f"the wheel lacks {len(missing)} file(s) of tfresnet/: {missing[:10]}")
    _check(info["version"] == version, f"tfresnet.__version__ is {info['version']!r}, setup.cfg says {version!r}")
    return package


def _env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"), "PYTHONNOUSERSITE": "1"}


def check_commands(venv: Path, work: Path, package: Path, version: str, timed) -> None:
    """The installed command line, run from `work` (an empty folder outside the checkout)."""
    env, tfresnet = _env(venv), str(venv / "bin" / "tfresnet")

    def cli(*args) -> str:
        return _run([tfresnet, *args], cwd=work, env=env)

    with timed("tfresnet --version, recipes, list-models"):
        out = cli("--version")
        _check(out == f"tfresnet {version}\n", f"tfresnet --version printed {out!r}")
        _check("mnist_resnet " in cli("recipes"), "tfresnet recipes does not list mnist_resnet")
        _check("resnet20 " in cli("list-models", "resnet20"), "tfresnet list-models does not list resnet20")
    run_dir = work / "runs" / "smoke"
    with timed("tfresnet train mnist_resnet --set smoke=true"):
        cli("train", "mnist_resnet", "--set", "smoke=true", "--set", "export=false", "--run-dir", str(run_dir))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        _check(metrics.get("recipe") == "mnist_resnet" and metrics.get("examples", 0) > 0,
               f"the smoke run's metrics: recipe {metrics.get('recipe')!r}, {metrics.get('examples')} examples")
    with timed("tfresnet predict RUN_DIR digit.png"):
        png = write_digit_png(work, package)
        (row,) = json.loads(cli("predict", str(run_dir), str(png), "--top", "10", "--json"))
        names = json.loads((run_dir / "class_names.json").read_text())
        guessed = [row[f"class_{k}"] for k in range(1, 11)]
        _check(row["error"] in ("", None) and sorted(guessed) == sorted(names),
               f"predict's classes {guessed} are not the run's class names {names}")
        total = sum(row[f"prob_{k}"] for k in range(1, 11))
        _check(abs(total - 1) < 1e-3, f"predict's ten probabilities sum to {total}")
    with timed("tfresnet export RUN_DIR"):
        cli("export", str(run_dir))
        _check((run_dir / "export" / "saved_model" / "saved_model.pb").is_file(), "export wrote no saved_model.pb")


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser.get("metadata", "version")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="tfresnet-wheel-check-"))
    started, times = time.perf_counter(), []

    class timed:
        def __init__(self, step):
            self.step = step

        def __enter__(self):
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            times.append((self.step, time.perf_counter() - self.start))
            print(f"{times[-1][1]:6.1f} s  {self.step}" + ("  FAILED" if exc[0] else ""), flush=True)

    try:
        version, files = setup_cfg_version(), source_files()
        with timed("build the wheel (pip wheel, offline)"):
            wheel = build_wheel(files, tmp)
        with timed(f"fresh venv outside the checkout, install {wheel.name}"):
            venv = make_venv(tmp, wheel)
        work = tmp / "work"
        work.mkdir()
        with timed("import tfresnet from the venv; every file of tfresnet/ installed"):
            package = check_installed(venv, work, package_files(files), version)
        check_commands(venv, work, package, version, timed)
    except CheckFailed as err:
        print(f"wheel check FAILED: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"wheel check passed in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
