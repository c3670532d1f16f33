"""Active liveness (recognition/challenge.py) on frame sequences made from the REAL photos
in ../shared/data/faces (obama.jpg, obama2.jpg, obama3.jpg, biden.jpg) with OpenCV
(simulators/challenge_frames.py):

- a head turn: a horizontal piecewise-linear warp that moves the nose towards one side
  while the jaw line stays put (the half the head turns away from is compressed);
- a blink: the eyes (face_recognition's landmarks) painted closed for one frame and
  squashed half-closed for the next;
- moving closer: the whole frame scaled up about the face;
- attacks: a slideshow of three photos, the same photo translated/scaled/rotated
  smoothly, a clip answering another challenge, another person mid-sequence.

Every frame gets a pixel of drift and sensor noise, as a live camera's frames do."""

from __future__ import annotations

import numpy as np
import pytest

from config.faces import ActiveLivenessSettings
from recognition.challenge import KINDS, judge_challenge, similarity_residual, yaw
from recognition.faces import Analysis, Params, analyse
from simulators.challenge_frames import _camera, load, rigid, sequence
from tests.conftest import require_peer
from tests.faces.conftest import FACES

S = ActiveLivenessSettings()
P = Params(landmarks=True, thumbnail=False)


def frames(rgbs: list[np.ndarray]) -> list[Analysis]:
    return [analyse(f, P) for f in rgbs]


@pytest.fixture(scope="module")
def clips() -> dict[str, list[Analysis]]:
    require_peer(FACES.is_dir(), f"real face photos at {FACES}")
    obama = load(str(FACES / "obama.jpg"))  # frontal: the start of every challenge
    out: dict[str, list[Analysis]] = {kind: frames(sequence(obama, kind)) for kind in KINDS}
    out["rigid"] = frames(rigid(obama))
    photos = [load(str(FACES / n)) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
    out["slideshow"] = frames([_camera(photos[i // 3], i, 7) for i in range(9)])
    turn = sequence(obama, "turn_left")
    biden = load(str(FACES / "biden.jpg"))
    out["swapped"] = frames(turn[:3] + [_camera(biden, 3, 1), _camera(biden, 4, 1)] + turn[5:])
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_each_genuine_movement_passes_its_own_challenge_only(clips: dict[str, list[Analysis]], kind: str) -> None:
    for asked in KINDS:
        r = judge_challenge(asked, clips[kind], S)
        assert r.passed is (asked == kind), (kind, asked, r.reason, r.details)
    ok = judge_challenge(kind, clips[kind], S)
    assert ok.details["identity_spread"] <= S.same_person


def test_a_turn_left_sent_for_turn_right_is_refused_as_the_wrong_way(clips: dict[str, list[Analysis]]) -> None:
    r = judge_challenge("turn_right", clips["turn_left"], S)
    assert not r.passed and "turned left, not right" in r.reason, r.reason
    r = judge_challenge("turn_left", clips["turn_right"], S)
    assert not r.passed and "turned right, not left" in r.reason, r.reason


def test_a_slideshow_of_photos_is_refused_for_every_challenge(clips: dict[str, list[Analysis]]) -> None:
    for kind in KINDS:
        r = judge_challenge(kind, clips["slideshow"], S)
        assert not r.passed and "jumped" in r.reason, (kind, r.reason)


def test_the_same_photo_moved_smoothly_is_refused_for_turns_and_blink(clips: dict[str, list[Analysis]]) -> None:
    for kind in ("turn_left", "turn_right", "blink"):
        r = judge_challenge(kind, clips["rigid"], S)
        assert not r.passed, (kind, r.details)
    # The photo moved 30 px, scaled 15 % and rotated 8°, smoothly: no jump, but its geometry
    # stays (a similarity transform maps the first frame's landmarks onto the last one's).
    pts = [a.faces[0].points for a in clips["rigid"]]
    assert pts[0] is not None and pts[-1] is not None
    assert similarity_residual(pts[0], pts[-1]) < S.min_residual
    turn = [a.faces[0].points for a in clips["turn_left"]]
    assert turn[0] is not None and turn[-2] is not None
    assert similarity_residual(turn[0], turn[-2]) > 2 * S.min_residual
    assert abs(yaw(pts[-1]) - yaw(pts[0])) < S.turn_min / 2


def test_another_person_mid_sequence_is_refused(clips: dict[str, list[Analysis]]) -> None:
    r = judge_challenge("turn_left", clips["swapped"], S)
    assert not r.passed and ("face changed" in r.reason or "jumped" in r.reason), r.reason


def test_similarity_residual_is_zero_for_a_rigid_move_of_the_points() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, (72, 2))
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    assert similarity_residual(src, src @ rot.T * 1.7 + (40, -15)) < 1e-9


def test_too_few_faces_or_an_unknown_kind_is_refused(clips: dict[str, list[Analysis]]) -> None:
    empty = [Analysis(640, 480) for _ in range(8)]
    assert not judge_challenge("blink", empty, S).passed
    assert "unknown challenge" in judge_challenge("smile", clips["blink"], S).reason


def test_tracked_frames_between_two_encoded_ones_pass_a_turn_and_refuse_a_swap() -> None:
    """What the service runs: detection and encoding on `identity_frames` frames (first and
    last by default), the face tracked in between (landmarks only)."""
    from recognition.faces import analyse_sequence
    from recognition.service import spread
    from simulators.challenge_frames import jpeg

    require_peer(FACES.is_dir(), f"real face photos at {FACES}")
    obama, biden = load(str(FACES / "obama.jpg")), load(str(FACES / "biden.jpg"))
    turn = sequence(obama, "turn_left")
    keep = spread(len(turn), S.identity_frames)
    assert keep == {0, len(turn) - 1}
    ok = analyse_sequence([jpeg(f) for f in turn], P, keep)
    assert [a.faces[0].encoding is not None for a in ok] == [i in keep for i in range(len(turn))]
    r = judge_challenge("turn_left", ok, S)
    assert r.passed, (r.reason, r.details)
    # Biden's photo in frames 3 and 4: the tracked landmarks jump, or lose the face.
    swapped = turn[:3] + [_camera(biden, 3, 1), _camera(biden, 4, 1)] + turn[5:]
    r = judge_challenge("turn_left", analyse_sequence([jpeg(f) for f in swapped], P, keep), S)
    assert not r.passed, r.details


def test_a_recording_that_turns_both_ways_is_refused_for_either_turn(clips: dict[str, list[Analysis]]) -> None:
    # Left, back to the front, then right: one recording to answer both turn challenges.
    both = clips["turn_left"] + clips["turn_left"][::-1][1:] + clips["turn_right"][1:]
    for kind in ("turn_left", "turn_right"):
        r = judge_challenge(kind, both, S)
        assert not r.passed and "not" in r.reason and "as asked" in r.reason, (kind, r.reason, r.details.get("steps"))
