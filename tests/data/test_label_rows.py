"""The multi-label row layouts (``segments.multi_label.rows``) are one table of facts
(``description.LABEL_ROWS``) that the reader acts on: a new layout is one entry. A label repeated
over ``per_label`` rows names the row where that label first stood."""

from __future__ import annotations

import pytest

from verbnoun.data import description
from verbnoun.data.dataset import open_dataset
from verbnoun.errors import AnnotationError, DatasetDescriptionError

YAML = """\
name: zoo
labels: action
segments:
  columns: {{id: clip, video: vid, start: t0, stop: t1, action: acts}}
  class_values: key
  multi_label: {{rows: {rows}}}
classes:
  action: {{inline: [walk, eat, sleep]}}
splits:
  validation: val.csv
"""


def _dataset(tmp_path, rows: str, table: str):
    (tmp_path / "val.csv").write_text("clip,vid,t0,t1,acts\n" + table)
    (tmp_path / "zoo.yaml").write_text(YAML.format(rows=rows))
    return open_dataset(tmp_path / "zoo.yaml")


def test_a_repeated_label_names_the_row_it_first_stood_in(tmp_path):
    table = "a,v,0,1,walk\na,v,0,1,eat\nb,v,1,2,eat\na,v,0,1,eat\n"
    with pytest.raises(AnnotationError, match=r"val\.csv:5: label 1 .* 'a' \(first at line 3\)"):
        _dataset(tmp_path, "per_label", table).segments("validation")


def test_a_new_row_layout_is_one_entry(tmp_path, monkeypatch):
    table = "a,v,0,1,walk\na,v,0.5,2,eat\na,v,1,1.5,walk\nb,v,3,4,sleep\n"
    with pytest.raises(
        DatasetDescriptionError, match=r"multi_label\.rows\]: expected one of one, per_label"
    ):
        _dataset(tmp_path, "per_label_loose", table).segments("validation")
    loose = description.LabelRows("per_label_loose", "rows of a segment may differ", grouped=True)
    monkeypatch.setitem(description.LABEL_ROWS, loose.name, loose)
    segments = _dataset(tmp_path, "per_label_loose", table).segments("validation")
    assert [(s.narration_id, s.action_ids, s.start, s.stop) for s in segments] == [
        ("a", ("0", "1"), 0.0, 2.0),  # spans its rows; walk given twice is one label
        ("b", ("2",), 3.0, 4.0),
    ]
    with pytest.raises(AnnotationError, match=r"start/stop differ"):
        _dataset(tmp_path, "per_label", table).segments("validation")
