"""verbnoun: measure and improve how multimodal LLMs understand human actions in video."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("verbnoun")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

API = (
    "Benchmark",
    "Kitchen",
    "Scores",
    "build_benchmark",
    "eval",
    "load_run",
    "reparse",
    "report",
    "score",
    "show_prompt",
    "synth",
)
__all__ = ["__version__", *API]


def __getattr__(name: str):
    """The notebook API (``verbnoun.api``), imported on first use so ``import verbnoun`` is light."""
    if name in API:
        from verbnoun import api

        return getattr(api, name)
    raise AttributeError(f"module 'verbnoun' has no attribute {name!r}")
