"""One output policy: explicit paths are kept unless overwritten on purpose, default paths
are numbered, directories are created, a directory is never taken for a file."""
import pytest

from aimc.outputs import claim_output, numbered


def test_explicit_path_is_refused_when_it_exists_unless_overwritten(tmp_path):
    p = tmp_path / "r.png"
    assert claim_output(p) == p
    p.write_bytes(b"first")
    with pytest.raises(FileExistsError, match=r"r.png exists; use --force"):
        claim_output(p, hint="use --force")
    assert claim_output(p, if_exists="overwrite") == p and p.read_bytes() == b"first"  # nothing deleted yet


def test_default_path_is_numbered_and_keeps_every_result(tmp_path):
    names = []
    for i in range(4):
        p = claim_output(tmp_path / "aimc-demo.png", if_exists="number")
        p.write_text(str(i))
        names.append(p.name)
    assert names == ["aimc-demo.png", "aimc-demo-1.png", "aimc-demo-2.png", "aimc-demo-3.png"]
    assert [(tmp_path / n).read_text() for n in names] == ["0", "1", "2", "3"]
    (tmp_path / "aimc-demo-1.png").unlink()
    assert numbered(tmp_path / "aimc-demo.png").name == "aimc-demo-1.png"  # the first free number
    assert numbered(tmp_path / "README").name == "README"


def test_directories_are_created_and_never_taken_for_files(tmp_path):
    assert not claim_output(tmp_path / "a" / "b" / "m.safetensors", mkdir=False).parent.exists()  # only checked
    p = claim_output(tmp_path / "a" / "b" / "m.safetensors")
    assert p.parent.is_dir() and not p.exists()
    for bad, reason in ((tmp_path / "a", "is a directory"), (str(tmp_path / "c") + "/", "is a directory"),
                        ("", "is a directory")):
        with pytest.raises(ValueError, match=reason):
            claim_output(bad)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="f is a file, not a directory"):
        claim_output(tmp_path / "f" / "g" / "m.png")
    with pytest.raises(ValueError, match="if_exists must be one of"):
        claim_output(tmp_path / "x", if_exists="replace")
