"""Bridges to other tools' ecosystems (lmms-eval); each imports its tool only when used."""
