"""Chinese renders in the tests' browser: the setup installs a CJK font (./dev: Debian's
fonts-wqy-zenhei). Without one, every Chinese label is drawn as the same empty box
(.notdef), and a screenshot of a zh-CN page shows nothing a person could read."""

from __future__ import annotations

from typing import Any

# Each string drawn on a canvas and compared pixel by pixel: characters with a glyph
# differ from each other; without a font they are all the same box.
DRAW = """([a, b]) => {
  const ink = (s) => {
    const c = document.createElement("canvas");
    c.width = 64; c.height = 64;
    const g = c.getContext("2d");
    g.font = "48px sans-serif";
    g.fillText(s, 4, 52);
    return Array.from(g.getImageData(0, 0, 64, 64).data).join(",");
  };
  return [ink(a) === ink(b), ink(a) === ink(" ")];
}"""


def test_chinese_characters_have_glyphs(live_gateway: Any, console_page: Any) -> None:
    page = console_page(live_gateway, "font", "monitor", lang="zh-CN")
    same, blank = page.evaluate(DRAW, ["警", "报"])
    assert not blank, "nothing drawn for a Chinese character"
    assert not same, "two different Chinese characters look alike: no CJK font (install fonts-wqy-zenhei)"
