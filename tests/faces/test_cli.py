"""`gateway enroll DIR` and `gateway faces calibrate` on the real photos."""

from __future__ import annotations

import yaml

from gateway.cli import main
from tests.faces.conftest import FACES, small_jpeg


def test_enroll_folder_and_calibrate(tmp_path, shared_data, capsys) -> None:
    src = tmp_path / "photos"
    (src / "obama").mkdir(parents=True)
    (src / "biden").mkdir()
    (src / "obama" / "a.jpg").write_bytes(small_jpeg(FACES / "obama.jpg"))
    (src / "obama" / "b.jpg").write_bytes(small_jpeg(FACES / "obama3.jpg", 900))
    (src / "obama" / "two.jpg").write_bytes(small_jpeg(FACES / "two_people.jpg"))
    (src / "biden" / "a.jpg").write_bytes(small_jpeg(FACES / "biden.jpg", 900))
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(yaml.safe_dump({"gateway": {"data_dir": str(tmp_path / "data")}}))
    assert main(["enroll", str(src), "-c", str(cfg), "--create-persons"]) == 0
    out = capsys.readouterr()
    assert "enrolled 3 photos, refused 1" in out.out
    assert "two.jpg: refused: 2 faces" in out.out + out.err
    assert main(["faces", "calibrate", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "same person" in out and "n=     1" in out and "implied threshold" in out
