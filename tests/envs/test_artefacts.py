"""Content-keyed reuse of stage artefacts (envs/storage/artefacts.py)."""

from pathlib import Path

from envs.storage.artefacts import STAGE_FILE, StageDir, stage_key


def test_the_key_holds_content_hashes_not_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert stage_key({"x": 1}, {"data": a}) == stage_key({"x": 1}, {"data": b})
    b.write_bytes(b"other")
    assert stage_key({"x": 1}, {"data": a}) != stage_key({"x": 1}, {"data": b})
    assert stage_key({"x": (1, 2)}, {"data": None}) == {
        "config": {"x": [1, 2]},
        "inputs": {"data": None},
    }


def test_done_only_after_finish_with_the_same_key_and_artefacts(tmp_path: Path) -> None:
    d = tmp_path / "stage"
    s = StageDir(d, {"config": 1}, ["out.txt"])
    assert not s.done()
    assert s.begin() is False and (d / STAGE_FILE).exists()
    (d / "out.txt").write_text("x")
    assert not s.done()  # killed before finish: never taken as done
    s.finish()
    assert s.done()
    assert not StageDir(d, {"config": 2}, ["out.txt"]).done()
    (d / "out.txt").unlink()
    assert not s.done()


def test_begin_resumes_an_unfinished_attempt_or_starts_over(tmp_path: Path) -> None:
    d = tmp_path / "stage"
    s = StageDir(d, {"k": 1})
    s.begin()
    (d / "partial.state").write_text("half")
    assert StageDir(d, {"k": 1}).begin() is True and (d / "partial.state").exists()
    assert StageDir(d, {"k": 1}).begin(resume=False) is False
    assert not (d / "partial.state").exists()
    (d / "partial.state").write_text("half")
    assert StageDir(d, {"k": 2}).begin() is False and not (d / "partial.state").exists()


def test_named_stages_share_a_directory(tmp_path: Path) -> None:
    a = StageDir(tmp_path, {"k": "a"}, ["a.csv"], name="a")
    b = StageDir(tmp_path, {"k": "b"}, ["b.csv"], name="b")
    a.begin()
    (tmp_path / "a.csv").write_text("1")
    a.finish()
    b.begin()
    (tmp_path / "b.csv").write_text("2")
    b.finish()
    assert a.done() and b.done()
    StageDir(tmp_path, {"k": "a2"}, ["a.csv"], name="a").begin()
    assert not (tmp_path / "a.csv").exists() and (tmp_path / "b.csv").exists() and b.done()
