"""The lmms-eval model plugin: ``--model llavaction`` runs a llavaction checkpoint.

Registered two ways (both point at the same class):

* the ``lmms_eval.models`` entry point of this package (``pyproject.toml``), read by lmms-eval's
  model registry at start-up: :func:`manifests`;
* lmms-eval's older plugin variable, ``LMMS_EVAL_PLUGINS=llavaction.integrations.lmms_eval``,
  which reads :data:`AVAILABLE_MODELS` here and imports ``models.llavaction.Llavaction``.
"""

from __future__ import annotations

MODEL_NAME = "llavaction"
AVAILABLE_MODELS = {MODEL_NAME: "Llavaction"}
CLASS_PATH = f"{__name__}.llavaction.Llavaction"


def manifests() -> list:
    """The model manifests lmms-eval's registry loads from the entry point."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_NAME, simple_class_path=CLASS_PATH)]
