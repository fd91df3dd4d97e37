"""The one reader per format and the write-then-rename helpers of verbnoun.fileio."""

from __future__ import annotations

import pytest

from verbnoun.errors import FileError, QuestionFileError
from verbnoun.fileio import (
    atomic_folder,
    atomic_outputs,
    read_csv,
    read_json,
    read_jsonl,
    read_text,
    read_yaml,
    require,
)


def test_atomic_outputs_replace_both_files_only_after_success(tmp_path):
    first, second = tmp_path / "q.jsonl", tmp_path / "q.manifest.json"
    first.write_text("old questions\n")
    second.write_text("old manifest\n")
    with pytest.raises(RuntimeError), atomic_outputs(first, second) as (a, b):
        a.write_text("new questions\n")
        b.write_text("new man")
        raise RuntimeError("the build failed after writing")
    assert first.read_text() == "old questions\n" and second.read_text() == "old manifest\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.jsonl", "q.manifest.json"]
    with atomic_outputs(first, second) as (a, b):
        assert a.parent == tmp_path and a.suffix == ".jsonl" and not a.exists()
        a.write_text("new questions\n")
        b.write_text("new manifest\n")
        assert first.read_text() == "old questions\n"  # nothing lands before the block ends
    assert first.read_text() == "new questions\n" and second.read_text() == "new manifest\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.jsonl", "q.manifest.json"]


def test_atomic_folder_keeps_the_old_folder_on_failure_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "done.json").write_text("{}")
    (out / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out, marker="done.json") as staging:
        (staging / "weights").write_text("new, half written")
        raise RuntimeError("failed")
    assert (out / "weights").read_text() == "old"
    with atomic_folder(out, marker="done.json") as staging:
        (staging / "weights").write_text("new")
        (staging / "done.json").write_text("{}")
    assert (out / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with (
        pytest.raises(FileError, match=r"holds no done\.json"),
        atomic_folder(mine, marker="done.json"),
    ):
        pass
    assert (mine / "notes.txt").read_text() == "keep"


def test_read_text_names_the_line_and_column_of_a_bad_byte_and_drops_a_bom(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfone\ntwo\nth\xffree\n")
    with pytest.raises(FileError, match=r"a\.csv:3: not UTF-8: byte 0xff at column 3"):
        read_text(path)
    path.write_bytes(b"\xef\xbb\xbfone\r\n")
    assert read_text(path) == "one\r\n"


def test_read_jsonl_tells_a_truncated_last_line_from_a_bad_middle_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": ')
    with pytest.raises(QuestionFileError, match=r"q\.jsonl:4: last line is truncated"):
        read_jsonl(path, error=QuestionFileError)
    path.write_text('{"a": 1}\n[1]\n{"a": 2}\n')
    with pytest.raises(FileError, match=r":2: expected a JSON object \(mapping\), found a list"):
        read_jsonl(path)
    path.write_text('{"a": 1}\r\n\r\n{"a": 2}\r\n')
    assert read_jsonl(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_read_json_and_require_name_the_key(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model": "random",\n "questions": 5}')
    data = read_json(path)
    assert require(data, "model", str, path) == "random"
    with pytest.raises(FileError, match=r"config\.json \[questions\]: expected a string"):
        require(data, "questions", str, path)
    with pytest.raises(FileError, match=r"config\.json \[seed\]: missing key"):
        require(data, "seed", int, path)
    path.write_text('{"model": "random",\n "questions": }')
    with pytest.raises(FileError, match=r"config\.json:2: not valid JSON"):
        read_json(path)
    path.write_text("")
    with pytest.raises(FileError, match="empty file"):
        read_json(path)


def test_read_yaml_names_the_line_and_says_tabs(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("a: 1\nb:\n\tc: 2\n")
    with pytest.raises(FileError, match=r"d\.yaml:3: not valid YAML: .*tabs"):
        read_yaml(path)
    path.write_text("- 1\n")
    with pytest.raises(FileError, match="expected a JSON object"):
        read_yaml(path)


def test_read_csv_checks_the_header_and_the_width_of_every_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,key\n0,"a, b"\n\n1,c\n')
    table = read_csv(path, required=("id", "key"))
    assert table.rows == [(2, {"id": "0", "key": "a, b"}), (4, {"id": "1", "key": "c"})]
    path.write_text("id;key\n0;a\n")
    with pytest.raises(FileError, match=r"t\.csv:1: missing required column\(s\): id, key; "
                       r"found 'id;key' \(is the file comma-separated\?\)"):  # fmt: skip
        read_csv(path, required=("id", "key"))
    path.write_text("id,key\n0,a\n1,b,c\n")
    with pytest.raises(FileError, match=r"t\.csv:3: expected 2 fields"):
        read_csv(path)
    path.write_text("id,id\n0,a\n")
    with pytest.raises(FileError, match=r"t\.csv:1: duplicate column"):
        read_csv(path)
