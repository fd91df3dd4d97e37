"""Output paths that cannot be written: named before any work, earlier outputs untouched."""

from __future__ import annotations

from damagetools import refused


def test_build_out_is_a_folder(world, tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    refused(capsys, ["mqa", "build", "--annotations", world.kitchen / "annotations", "--out", out],
            file=out, place="is a folder, expected a file", keep=(out,))  # fmt: skip


def test_build_out_folder_is_a_file(world, tmp_path, capsys):
    parent = tmp_path / "results"
    parent.write_text("a file, not a folder\n")
    refused(capsys, ["mqa", "build", "--annotations", world.kitchen / "annotations", "--out",
                     parent / "bench.jsonl"], file=parent, place="is a file, expected a folder",
            keep=(parent,))  # fmt: skip


def test_sft_out_is_a_file(world, tmp_path, capsys):
    out = tmp_path / "sft"
    out.write_text("a file\n")
    refused(capsys, ["sft", "build", "--annotations", world.kitchen / "annotations", "--out", out],
            file=out, place="is a file, expected a folder", keep=(out,))  # fmt: skip


def test_eval_out_is_a_file(world, tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("a file\n")
    refused(capsys, ["eval", "--model", "random", "--questions", world.questions, "--out", out],
            file=out, place="exists", keep=(out,))  # fmt: skip
