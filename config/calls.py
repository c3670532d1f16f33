"""Remote video sessions (owned by the calls area: streams/calls.py, docs/calls.md)."""

from pydantic import Field, model_validator

from config.base import Section


class CallSettings(Section):
    """The gateway is the session's mixer and its recorder: every party sends it audio and
    video, and receives one composite picture (every party in a grid) and the mix of the
    others' voices. One encode per receiver, whatever the number of parties."""

    enabled: bool = Field(True, description="Serve remote video sessions.")
    width: int = Field(640, ge=160, le=1920, multiple_of=16, description="Composite picture width (sent to the parties and recorded).")
    height: int = Field(480, ge=120, le=1080, multiple_of=16, description="Composite picture height.")
    fps: int = Field(10, ge=2, le=30, description="Composite pictures per second.")
    max_parties: int = Field(4, ge=2, le=9, description="Parties in one session at most (the grid's tiles: 4 = 2x2, 9 = 3x3).")
    link_valid_minutes: int = Field(30, ge=1, le=24 * 60, description="A party's join link stops working this long after the session was set up.")
    connect_s: float = Field(30, gt=0, le=300, description="A party whose browser does not connect this long after it joined is taken as dropped.")
    ring_s: float = Field(60, gt=0, le=3600, description="A call a kiosk made that no officer answered ends after this long.")
    kiosk_online_s: float = Field(90, gt=0, le=3600, description="A kiosk not heard this long is offline: a call to it fails at once.")
    check_min_s: float = Field(60, gt=0, le=3600, description="Identity checks during a session come at random moments, between check_min_s ...")
    check_max_s: float = Field(180, gt=0, le=7200, description="... and check_max_s apart (and at the start, and when the officer asks).")
    impostor_after: int = Field(2, ge=1, le=20, description="Consecutive checks seeing another face before an impostor alert.")
    absent_after: int = Field(2, ge=1, le=20, description="Consecutive checks seeing no face before an empty-seat alert.")
    max_sessions: int = Field(20, ge=1, le=500, description="Sessions one node runs at once (each records and mixes: ~7% of a core, ~10% more per party).")
    max_open_per_user: int = Field(4, ge=1, le=100, description="Sessions one officer (or kiosk) may have running at once.")
    idle_s: float = Field(600, gt=0, le=86400, description="A session nobody is connected to this long ends (and is sealed).")
    bitrate: int = Field(800_000, ge=100_000, le=8_000_000, description="Recording bitrate of the composite video (H.264).")

    @model_validator(mode="after")
    def _order(self) -> "CallSettings":
        if self.check_max_s < self.check_min_s:
            raise ValueError("check_max_s must be at least check_min_s")
        return self
