"""LoRA settings out of bounds are refused with their own bound, before the general ones: a
negative rank is told it must be at least 1 (not "at least 0", which 0 would not pass)."""

from __future__ import annotations

import pytest

from verbnoun.train.config import ConfigError, config_from_dict

BASE = {"data": {"mixture": "m.yaml"}, "model": {"checkpoint": "base"}}


@pytest.mark.parametrize(
    ("lora", "message"),
    [
        ({"rank": -3}, r"^lora\.rank: must be at least 1, got -3$"),
        ({"rank": 0}, r"^lora\.rank: must be at least 1, got 0$"),
        ({"alpha": -1.0}, r"^lora\.alpha: must be positive, got -1\.0$"),
        ({"dropout": -0.1}, r"^lora\.dropout: must be a finite number >= 0, got -0\.1$"),
        ({"dropout": 1.0}, r"^lora\.dropout: must be below 1, got 1\.0$"),
    ],
)
def test_lora_bounds(lora, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**BASE, "lora": lora})


def test_good_lora_settings_pass():
    config = config_from_dict({**BASE, "lora": {"rank": 2, "alpha": 4.0, "dropout": 0.0}})
    assert config.lora.rank == 2
