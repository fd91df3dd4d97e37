"""The lmms-eval model plugin: ``--model llavaction`` runs a llavaction checkpoint.

Registered through the ``lmms_eval.models`` entry point of this package (``pyproject.toml``),
which lmms-eval's model registry reads at start-up: :func:`manifests`. (lmms-eval's older
``LMMS_EVAL_PLUGINS`` variable also needs a ``tasks`` package in 0.7.3 and is not supported;
:data:`AVAILABLE_MODELS` follows its naming only for readers of that convention.)
"""

from __future__ import annotations

MODEL_NAME = "llavaction"
AVAILABLE_MODELS = {MODEL_NAME: "Llavaction"}
CLASS_PATH = f"{__name__}.llavaction.Llavaction"


def manifests() -> list:
    """The model manifests lmms-eval's registry loads from the entry point."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_NAME, simple_class_path=CLASS_PATH)]
