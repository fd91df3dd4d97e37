"""A virtual environment with the authors' own package, for parity checks against it.

The authors' code is the ``llavaction`` package on PyPI (0.0.1); its import name is the one our
package had before the rename, so it must never be installed beside ours. This module makes a
separate venv (by default ``runs/original-venv``) with it and what its inference and training
paths import, and returns that venv's python; the parity benchmarks run the original in a
subprocess with it and exchange plain files (JSON, safetensors, ``.npy``) with it.

    from original_env import original_python
    python = original_python()            # creates or reuses the venv, returns its python

The package is installed ``--no-deps`` (its metadata pins a CUDA stack); the requirements below
are what its CPU inference path imports (SPEC 9), at versions that work with torch 2.13 on a CPU.
``VERBNOUN_ORIGINAL_VENV`` points at another venv; ``VERBNOUN_ORIGINAL_PIP_ARGS`` adds pip
arguments (e.g. ``--index-url https://download.pytorch.org/whl/cpu`` for a CPU torch wheel).
Run on its own (``python benchmarks/original_env.py``) it builds the venv and prints its python.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / "runs" / "original-venv"
ORIGINAL = "llavaction==0.0.1"
# What the original's inference path imports (selective_inference -> ek_eval -> utils, dataset,
# builder, llava_arch, siglip_encoder, conversation, mm_utils), CPU-capable versions.
REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==4.45.2",
    "tokenizers>=0.20,<0.21",
    "safetensors>=0.4",
    "huggingface_hub>=0.23,<1.0",
    "accelerate>=0.34,<1.2",
    "numpy",
    "einops",
    "pillow",
    "decord",
    "opencv-python-headless",
    "pandas",
    "tqdm",
    "av",
    "requests",
    "pyyaml",
)
# Its GPT-4o path (action/chatgpt_utils.py): the 1.68-era client with beta.chat.completions.parse.
GPT_REQUIREMENTS = ("openai>=1.68,<1.69", "pydantic>=2,<3")


def venv_python(directory: Path) -> Path:
    """The python executable inside a venv directory."""
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(python: Path, args: Sequence[str]) -> None:
    extra = shlex.split(os.environ.get("VERBNOUN_ORIGINAL_PIP_ARGS", ""))
    command = [str(python), "-m", "pip", "install", "--quiet", *extra, *args]
    print("original env:", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def _location(directory: str | Path | None) -> Path:
    return Path(directory or os.environ.get("VERBNOUN_ORIGINAL_VENV") or DEFAULT_VENV)


def _stamp(directory: Path, wanted: Sequence[str]) -> Path:
    digest = hashlib.sha256("\n".join([ORIGINAL, *wanted]).encode()).hexdigest()[:16]
    return directory / f".verbnoun-original-{digest}"


def ready_python(
    directory: str | Path | None = None, *, extras: Sequence[str] = (), gpt: bool = False
) -> Path | None:
    """The venv's python when it is already built with these requirements, else ``None``
    (creates nothing: what a benchmark's quick mode asks before it skips)."""
    directory = _location(directory)
    python = venv_python(directory)
    wanted = [*REQUIREMENTS, *(GPT_REQUIREMENTS if gpt else ()), *extras]
    return python if python.is_file() and _stamp(directory, wanted).is_file() else None


def original_python(
    directory: str | Path | None = None, *, extras: Sequence[str] = (), gpt: bool = False
) -> Path:
    """Create (or reuse) the venv with the authors' package and return its python.

    ``extras``: more requirements (pip specifiers) a caller needs; ``gpt``: also the packages
    of the original's GPT-4o path. A stamp file records what was installed, so a second call with
    the same requirements returns at once and a changed list installs the difference."""
    directory = _location(directory)
    wanted = [*REQUIREMENTS, *(GPT_REQUIREMENTS if gpt else ()), *extras]
    python = venv_python(directory)
    stamp = _stamp(directory, wanted)
    if python.is_file() and stamp.is_file():
        return python
    if not python.is_file():
        print(f"original env: creating {directory}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(directory)
    _pip(python, wanted)
    _pip(python, ["--no-deps", ORIGINAL])
    check = "import llavaction, transformers, torch; print(transformers.__version__)"
    subprocess.run([str(python), "-c", check], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text("\n".join([ORIGINAL, *wanted]) + "\n", encoding="utf-8")
    return python


if __name__ == "__main__":
    print(original_python(gpt="--gpt" in sys.argv[1:]))
