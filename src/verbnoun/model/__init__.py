"""The LLaVAction model: LLaVA-Video (SigLIP + projector + Qwen2) with the action token.

Modules: ``config`` (settings, read from a checkpoint's config.json), ``architecture`` (the
model), ``processor`` (frames and prompts to inputs), ``tokenization`` (tokenizers without a
hub), ``checkpoint`` (released LLaVA-NeXT layout and our format, streamed), ``inference``
(greedy generation, single-forward multiple choice), ``cli_model`` (``verbnoun ask``).

Importing this package does not import torch; import the submodules.
"""
