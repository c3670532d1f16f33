"""The text of an alert change as officers read it in a robot group or a mail: zh-CN, with
the level, the person, the place, the time and a link to the alert in the console.

Pure functions of the change's payload (the alert as the API shows it) and the names looked
up when the change was routed, so a message reads the same however often it is resent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

LEVELS = {"red": "红色预警", "orange": "橙色预警", "yellow": "黄色预警", "blue": "蓝色预警"}
KINDS = {
    "exclusion_breach": "进入禁入区域", "tamper": "设备被拆除", "sos": "紧急求助", "disk_full": "磁盘已满",
    "recording_failed": "录像失败", "inclusion_exit": "离开活动区域", "curfew": "违反宵禁", "camera_offline": "摄像机离线",
    "lost_contact": "失去联系", "no_fix": "无定位", "checkin_failed": "签到核验失败", "checkin_missed": "未按时签到", "checkin_out_of_zone": "远程签到位置越界", "assistance_requested": "请求民警协助",
    "kiosk_offline": "签到机离线", "upload_quarantined": "上传文件已隔离", "low_battery": "电量低",
}
CHANGES = {
    "opened": "新预警", "updated": "预警持续", "escalated": "预警升级", "acknowledged": "已确认", "resolved": "已解除",
    "assigned": "已指派", "assessed": "已研判", "disposed": "已处置", "fed_back": "已反馈", "level_changed": "等级调整", "noted": "新备注",
}


@dataclass(frozen=True)
class Message:
    """One change, ready for any channel."""

    key: str  # the idempotency key
    change: str
    alert: dict[str, Any]
    title: str
    lines: list[tuple[str, str]]  # (label, value), in order
    url: str | None

    def text(self) -> str:
        out = [self.title, *(f"{k}：{v}" for k, v in self.lines)]
        if self.url:
            out.append(f"查看：{self.url}")
        out.append(f"编号：{self.key}")
        return "\n".join(out)

    def markdown(self) -> str:
        colour = {"red": "warning", "orange": "warning"}.get(self.alert.get("level", ""), "comment")
        out = [f"### <font color=\"{colour}\">{self.title}</font>", *(f"> **{k}**：{v}" for k, v in self.lines)]
        if self.url:
            out.append(f"[在控制台查看]({self.url})")
        out.append(f"<font color=\"comment\">编号：{self.key}</font>")
        return "\n".join(out)


def local_time(value: str | None, tz: str) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def build(key: str, change: str, alert: dict[str, Any], *, person: str | None, zone: str | None, tz: str,
          public_url: str | None) -> Message:
    level = LEVELS.get(alert.get("level", ""), alert.get("level", ""))
    kind = KINDS.get(alert.get("kind", ""), alert.get("kind", ""))
    title = f"【{level}】{kind}（{CHANGES.get(change, change)}）"
    who = person or alert.get("person_id")
    lines = [("等级", level), ("类型", kind)]
    if who:
        lines.append(("人员", f"{who}（{alert['person_id']}）" if person and alert.get("person_id") else str(who)))
    if alert.get("device_id"):
        lines.append(("设备", str(alert["device_id"])))
    pos = alert.get("position") or {}
    place = zone or alert.get("zone_id")
    if pos.get("lat") is not None and pos.get("lon") is not None:
        coords = f"{pos['lat']:.5f}, {pos['lon']:.5f}"
        place = f"{place}（{coords}）" if place else coords
    lines.append(("地点", place or "-"))
    lines.append(("时间", local_time(alert.get("opened_at"), tz)))
    if alert.get("message"):
        lines.append(("说明", str(alert["message"])))
    if change not in ("opened", "updated") and alert.get("notes"):
        last = alert["notes"][-1]
        if last.get("text"):
            lines.append(("处理", f"{last.get('author') or ''} {last['text']}".strip()))
    url = f"{public_url.rstrip('/')}/console/alerts?id={alert['id']}" if public_url else None
    return Message(key, change, alert, title, lines, url)
