"""lmms-eval integration: an exported MQA task and a model plugin for llavaction checkpoints.

* :mod:`.export` writes an lmms-eval task folder for an MQA question file
  (``verbnoun export lmms-eval``): the task YAML, its ``utils.py``, and a local data file.
* :mod:`.task` holds the functions the task YAML names: frames sampled per SPEC 2 by our own
  decoder, the question's exact prompt, our answer parser and metrics.
* :mod:`.models` is the model plugin (``--model llavaction``), registered with lmms-eval through
  the ``lmms_eval.models`` entry point (or ``LMMS_EVAL_PLUGINS=verbnoun.integrations.lmms_eval``).

Nothing here imports lmms-eval except the plugin class itself.
"""
