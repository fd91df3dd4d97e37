"""Run folders (verbnoun.runs): the guarantees both runners share, on real files."""

from __future__ import annotations

import json

import pytest

from verbnoun import runs
from verbnoun.errors import FileError, VerbnounError


def test_config_written_then_resumed_then_refused_with_the_exact_difference(tmp_path):
    config = {"model": "m", "frames": 8, "model_settings": {"api_protocol": "chat", "seed": 0}}
    where = {"questions": "/q.jsonl"}
    runs.check_or_write_config(tmp_path, config, recorded=where, latest={"transport": {"tries": 3}})
    written = json.loads((tmp_path / "config.json").read_text())
    assert list(written) == [
        "model", "frames", "model_settings", "questions", "created_with", "transport"
    ]  # fmt: skip
    before = (tmp_path / "config.json").read_bytes()
    # the same settings resume (recorded keys are not checked)
    runs.check_or_write_config(tmp_path, config, recorded={"questions": "/elsewhere.jsonl"},
                               latest={"transport": {"tries": 3}})  # fmt: skip
    assert (tmp_path / "config.json").read_bytes() == before
    # the latest transport is recorded, nothing else changes
    runs.check_or_write_config(tmp_path, config, recorded=where, latest={"transport": {"tries": 5}})
    assert json.loads((tmp_path / "config.json").read_text())["transport"] == {"tries": 5}
    other = {"model": "m", "frames": 16, "model_settings": {"api_protocol": "responses", "seed": 0}}
    with pytest.raises(VerbnounError) as refused:
        runs.check_or_write_config(tmp_path, other, recorded=where)
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path / "config.json") in message
    assert "frames: 8 -> 16" in message
    assert "model_settings.api_protocol: 'chat' -> 'responses'" in message
    assert "seed" not in message and message.endswith("use a new --out")


def test_config_compares_tuples_as_lists_and_hints_by_the_changed_keys(tmp_path):
    runs.check_or_write_config(tmp_path, {"spans": ((0.0, 1.5),), "parser_version": 1})
    runs.check_or_write_config(tmp_path, {"spans": [[0.0, 1.5]], "parser_version": 1})
    with pytest.raises(VerbnounError, match=r"parser_version: 1 -> 2\); rescore"):
        runs.check_or_write_config(
            tmp_path, {"spans": [[0.0, 1.5]], "parser_version": 2},
            hint=lambda changed: "rescore" if changed == ["parser_version"] else "new --out",
        )  # fmt: skip


def test_a_long_value_is_shortened_in_the_refusal(tmp_path):
    runs.check_or_write_config(tmp_path, {"ids": list(range(500))})
    with pytest.raises(VerbnounError) as refused:
        runs.check_or_write_config(tmp_path, {"ids": list(range(501))})
    assert len(str(refused.value)) < 400 and "..." in str(refused.value)


def test_appended_records_survive_a_torn_tail_and_are_read_back(tmp_path):
    log = tmp_path / "windows.jsonl"
    with runs.Appender(log) as out:
        out.append([{"id": "a", "text": "café"}, {"id": "b"}])
        out.append([])
    assert log.read_bytes() == '{"id": "a", "text": "café"}\n{"id": "b"}\n'.encode()
    with log.open("ab") as handle:
        handle.write(b'{"id": "c", "te')  # a kill mid-line
    assert [r["id"] for r in runs.iter_records(log)] == ["a", "b"]  # the torn line is skipped
    runs.repair_tail(log)
    assert log.read_bytes().endswith(b'{"id": "b"}\n')
    with runs.Appender(log, sync=False) as out:
        out.append([{"id": "c"}])
    assert [r["id"] for r in runs.iter_records(log)] == ["a", "b", "c"]


def test_repair_tail_reads_far_back_and_empties_a_file_with_no_complete_line(tmp_path):
    log = tmp_path / "p.jsonl"
    log.write_bytes(b'{"id": "a"}\n' + b"x" * 10_000)
    runs.repair_tail(log)
    assert log.read_bytes() == b'{"id": "a"}\n'
    log.write_bytes(b"y" * 9000)
    runs.repair_tail(log)
    assert log.read_bytes() == b""
    runs.repair_tail(tmp_path / "absent.jsonl")  # nothing to repair


@pytest.mark.parametrize(
    ("line", "message", "json_message"),
    [
        (b"{oops\n", r"p\.jsonl:2: malformed thing$", r"p\.jsonl:2: not valid JSON: Expecting"),
        (b'{"id": "\xff"}\n', r"p\.jsonl:2: malformed thing$", r"p\.jsonl:2: not UTF-8: byte 0xff"),
        (b'{"id": "b", "id": "c"}\n', r"p\.jsonl:2: malformed thing$",
         r"p\.jsonl:2: duplicate key 'id'"),
        (b'["a"]\n', r"p\.jsonl:2: malformed thing$", None),
        (b'{"id": 3}\n', r"p\.jsonl:2: malformed thing$", None),
        (b'{"id": "b", "bad": 1}\n', r"p\.jsonl:2: malformed thing: bad is set$", None),
    ],
)  # fmt: skip
def test_a_bad_line_names_file_and_line(tmp_path, line, message, json_message):
    log = tmp_path / "p.jsonl"
    log.write_bytes(b'{"id": "a"}\n' + line + b'{"id": "z"}\n')
    check = lambda record: "bad is set" if "bad" in record else None  # noqa: E731
    with pytest.raises(FileError, match=message):
        list(runs.iter_records(log, "malformed thing", check))
    with pytest.raises(FileError, match=json_message or message):  # say why a line does not parse
        list(runs.iter_records(log, "malformed thing", check, say_json=True))


def test_shards_partition_ids_and_stretches_and_merge_their_files(tmp_path):
    ids = [f"P01_{i}" for i in range(200)]
    shards = [runs.Shard(k, 3) for k in (1, 2, 3)]
    owners = [[s for s in shards if s.owns(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)  # every id has exactly one owner
    assert min(sum(o[0] == s for o in owners) for s in shards) > 40  # and none is starved
    items = list(range(10))
    assert [s.stretch(items) for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert runs.Shard(1, 1).file_name("windows") == "windows.jsonl"
    assert shards[1].file_name("windows") == "windows.shard-2-of-3.jsonl"
    assert shards[1].failed_filename == "failed.shard-2-of-3.jsonl"
    for shard, names in zip(shards, (["a", "b"], ["c"], []), strict=True):
        with runs.Appender(tmp_path / shard.file_name("windows")) as out:
            out.append({"id": n} for n in names)
    (tmp_path / "other.jsonl").write_text('{"id": "x"}\n')
    assert [r["id"] for r in runs.merged(tmp_path, "windows")] == ["a", "b", "c"]
    with pytest.raises(VerbnounError, match="K/N"):
        runs.Shard.parse("2")
    with pytest.raises(VerbnounError, match="1 <= K <= N"):
        runs.Shard.parse("4/3")


def test_rewrite_is_atomic_and_keeps_the_log_format(tmp_path):
    log = tmp_path / "failed.jsonl"
    runs.rewrite(log, [{"id": "a", "n": "ü"}])
    assert log.read_bytes() == '{"id": "a", "n": "ü"}\n'.encode()
    assert [p.name for p in tmp_path.iterdir()] == ["failed.jsonl"]


def test_checkpoint_fingerprint_follows_config_and_file_sizes(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden": 8}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
    (tmp_path / "sub").mkdir()
    first = runs.checkpoint_fingerprint(tmp_path)
    assert first == runs.checkpoint_fingerprint(tmp_path) and len(first) == 64
    (tmp_path / "sub" / "ignored.bin").write_bytes(b"1")  # only the folder's own files count
    assert runs.checkpoint_fingerprint(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 101)
    second = runs.checkpoint_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
    (tmp_path / "config.json").write_text('{"hidden": 9}')
    assert len({first, second, runs.checkpoint_fingerprint(tmp_path)}) == 3
